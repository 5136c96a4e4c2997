/* Plain C ABI over HailoRT 5.x's C++ VDevice/InferModel API.
 *
 * Hailo-10H runs models through an RPC server on the chip; HailoRT's C API configure path
 * (hailo_configure_vdevice) returns HAILO_NOT_IMPLEMENTED there, so the only way in is the C++
 * InferModel API. This shim keeps that C++ behind a handful of C functions that Rust can call.
 *
 * Every function that can fail returns a hailo_status value (0 = success) and, when `err` is not
 * NULL, writes a NUL-terminated description of the failing step into err[0..err_len).
 * No C++ exception crosses this boundary. */
#ifndef HRT_SHIM_H
#define HRT_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HRT_NAME_MAX 256
#define HRT_TEXT_MAX 64

typedef struct hrt_device hrt_device;
typedef struct hrt_model hrt_model;

typedef struct {
    char name[HRT_NAME_MAX];
    uint32_t height;
    uint32_t width;
    uint32_t features;
    /* hailo_format_type_t / hailo_format_order_t / hailo_format_flags_t of the host-side buffer. */
    int32_t format_type;
    int32_t format_order;
    int32_t format_flags;
    /* Bytes of one frame in the host-side format. */
    uint64_t frame_size;
    /* Number of quantisation entries (1, or one per feature when the HEF scales per feature). */
    uint32_t quant_count;
} hrt_stream_info;

typedef struct {
    float qp_zp;
    float qp_scale;
    float limvals_min;
    float limvals_max;
} hrt_quant_info;

typedef struct {
    uint32_t fw_major;
    uint32_t fw_minor;
    uint32_t fw_revision;
    /* hailo_device_architecture_t */
    int32_t device_architecture;
    char board_name[HRT_TEXT_MAX];
    char product_name[HRT_TEXT_MAX];
    char serial_number[HRT_TEXT_MAX];
    char device_id[HRT_TEXT_MAX];
} hrt_identity;

/* The runtime library actually loaded (not the headers the shim was built against). */
int32_t hrt_library_version(uint32_t *major, uint32_t *minor, uint32_t *revision);
/* Static string for a hailo_status, e.g. "HAILO_INVALID_HEF"; never NULL. */
const char *hrt_status_message(int32_t status);

/* One VDevice over the first free Hailo device (default params: a single device, this process). */
/* group_id: HailoRT's VDevice group (NULL: its default, a device of this process alone). */
int32_t hrt_device_open(const char *group_id, hrt_device **out, char *err, size_t err_len);
int32_t hrt_device_identity(hrt_device *dev, hrt_identity *out, char *err, size_t err_len);
/* Models opened from this device keep it alive; closing the device handle first is safe. */
void hrt_device_close(hrt_device *dev);

/* Loads a HEF and configures it.
 * batch_size: 0 lets HailoRT choose (HAILO_DEFAULT_BATCH_SIZE).
 * input_type / output_type: a hailo_format_type_t for every input / output stream, or 0 (AUTO)
 * to keep the HEF's own format (e.g. UINT8 images in, quantised outputs out). */
int32_t hrt_model_open(hrt_device *dev, const char *hef_path, uint16_t batch_size, int32_t input_type,
                       int32_t output_type, hrt_model **out, char *err, size_t err_len);
void hrt_model_close(hrt_model *model);

uint32_t hrt_model_input_count(const hrt_model *model);
uint32_t hrt_model_output_count(const hrt_model *model);
int32_t hrt_model_input_info(const hrt_model *model, uint32_t index, hrt_stream_info *out);
int32_t hrt_model_output_info(const hrt_model *model, uint32_t index, hrt_stream_info *out);
/* quant_index < hrt_stream_info.quant_count */
int32_t hrt_model_input_quant(const hrt_model *model, uint32_t index, uint32_t quant_index, hrt_quant_info *out);
int32_t hrt_model_output_quant(const hrt_model *model, uint32_t index, uint32_t quant_index, hrt_quant_info *out);
/* The batch size the model was configured with (0 = chosen by HailoRT). */
uint16_t hrt_model_batch_size(const hrt_model *model);
/* How many frames the configured model accepts in flight at once. */
uint64_t hrt_model_async_queue_size(const hrt_model *model);

/* Runs `frames` frames synchronously.
 * inputs[i] holds frames * frame_size bytes for input stream i (frames back to back); outputs[j]
 * receives frames * frame_size bytes for output stream j. input_lens / output_lens give the buffer
 * sizes and must match exactly. On failure the model may have shut itself down: close and reopen it. */
int32_t hrt_model_run(hrt_model *model, uint32_t frames, const uint8_t *const *inputs, const size_t *input_lens,
                      uint8_t *const *outputs, const size_t *output_lens, uint32_t timeout_ms, char *err,
                      size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
