// C ABI over HailoRT 5.x VDevice / InferModel (see hrt_shim.h for the contract).
//
// Buffers: HailoRT DMA-maps user buffers and asks for page-aligned output buffers whose size is a
// whole number of pages ("otherwise some memory corruption might occur at the end of the last
// page", infer_model.hpp). Rust hands us ordinary Vec memory, so every run goes through staging
// buffers owned here, allocated page-aligned once per model and grown on demand.

#include "hrt_shim.h"

#include <hailo/hailort.h>
#include <hailo/infer_model.hpp>
#include <hailo/vdevice.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

using namespace hailort;

struct hrt_device {
    std::shared_ptr<VDevice> vdevice;
};

namespace {

constexpr size_t kPage = 4096;

void set_err(char *err, size_t err_len, const std::string &msg)
{
    if ((nullptr == err) || (0 == err_len)) {
        return;
    }
    size_t n = std::min(msg.size(), err_len - 1);
    std::memcpy(err, msg.data(), n);
    err[n] = '\0';
}

int32_t fail(char *err, size_t err_len, const std::string &step, hailo_status status)
{
    set_err(err, err_len, step + " failed: " + hailo_get_status_message(status) + " (" + std::to_string(status) + ")");
    return static_cast<int32_t>(status);
}

void copy_text(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = std::min(len, cap - 1);
    std::memcpy(dst, src, n);
    dst[n] = '\0';
}

struct AlignedFree {
    void operator()(uint8_t *p) const { std::free(p); }
};
using PageBuffer = std::unique_ptr<uint8_t, AlignedFree>;

size_t round_up_pages(size_t n)
{
    return ((n + kPage - 1) / kPage) * kPage;
}

PageBuffer alloc_pages(size_t n)
{
    void *p = nullptr;
    if (0 != posix_memalign(&p, kPage, round_up_pages(std::max<size_t>(n, 1)))) {
        return PageBuffer(nullptr);
    }
    return PageBuffer(static_cast<uint8_t *>(p));
}

struct Stream {
    hrt_stream_info info;
    std::vector<hailo_quant_info_t> quant;
    // One page-aligned staging buffer per in-flight frame.
    std::vector<PageBuffer> staging;
};

void describe(const InferModel::InferStream &s, Stream &out)
{
    std::memset(&out.info, 0, sizeof(out.info));
    std::string name = s.name();
    copy_text(out.info.name, sizeof(out.info.name), name.c_str(), name.size());
    hailo_3d_image_shape_t shape = s.shape();
    out.info.height = shape.height;
    out.info.width = shape.width;
    out.info.features = shape.features;
    hailo_format_t fmt = s.format();
    out.info.format_type = static_cast<int32_t>(fmt.type);
    out.info.format_order = static_cast<int32_t>(fmt.order);
    out.info.format_flags = static_cast<int32_t>(fmt.flags);
    out.info.frame_size = static_cast<uint64_t>(s.get_frame_size());
    out.quant = s.get_quant_infos();
    out.info.quant_count = static_cast<uint32_t>(out.quant.size());
}

} // namespace

struct hrt_model {
    std::shared_ptr<VDevice> vdevice; // keeps the device open while the model lives
    std::shared_ptr<InferModel> infer_model;
    ConfiguredInferModel configured;
    std::vector<Stream> inputs;
    std::vector<Stream> outputs;
    uint16_t batch_size = 0;
    size_t queue_size = 1;
};

namespace {

bool ensure_staging(std::vector<Stream> &streams, size_t frames)
{
    for (auto &s : streams) {
        while (s.staging.size() < frames) {
            PageBuffer b = alloc_pages(static_cast<size_t>(s.info.frame_size));
            if (!b) {
                return false;
            }
            s.staging.push_back(std::move(b));
        }
    }
    return true;
}

// Runs one chunk (frames <= queue size) and waits for all of it.
int32_t run_chunk(hrt_model *m, size_t first, size_t frames, const uint8_t *const *inputs, uint8_t *const *outputs,
                  std::chrono::milliseconds timeout, char *err, size_t err_len)
{
    std::vector<ConfiguredInferModel::Bindings> bindings;
    bindings.reserve(frames);
    for (size_t f = 0; f < frames; f++) {
        auto b = m->configured.create_bindings();
        if (!b) {
            return fail(err, err_len, "create_bindings", b.status());
        }
        auto bind = b.release();
        for (size_t i = 0; i < m->inputs.size(); i++) {
            Stream &s = m->inputs[i];
            size_t fs = static_cast<size_t>(s.info.frame_size);
            uint8_t *stage = s.staging[f].get();
            std::memcpy(stage, inputs[i] + (first + f) * fs, fs);
            auto in = bind.input(s.info.name);
            if (!in) {
                return fail(err, err_len, std::string("bindings.input(") + s.info.name + ")", in.status());
            }
            hailo_status st = in.value().set_buffer(MemoryView(stage, fs));
            if (HAILO_SUCCESS != st) {
                return fail(err, err_len, std::string("set_buffer(") + s.info.name + ")", st);
            }
        }
        for (size_t o = 0; o < m->outputs.size(); o++) {
            Stream &s = m->outputs[o];
            size_t fs = static_cast<size_t>(s.info.frame_size);
            auto out = bind.output(s.info.name);
            if (!out) {
                return fail(err, err_len, std::string("bindings.output(") + s.info.name + ")", out.status());
            }
            hailo_status st = out.value().set_buffer(MemoryView(s.staging[f].get(), fs));
            if (HAILO_SUCCESS != st) {
                return fail(err, err_len, std::string("set_buffer(") + s.info.name + ")", st);
            }
        }
        bindings.push_back(bind);
    }

    hailo_status st = m->configured.wait_for_async_ready(timeout, static_cast<uint32_t>(frames));
    if (HAILO_SUCCESS != st) {
        return fail(err, err_len, "wait_for_async_ready", st);
    }
    // One job per frame: a job's destructor waits for its frame, so an early return never leaves the
    // device writing into staging memory that is about to be reused.
    std::vector<AsyncInferJob> jobs;
    jobs.reserve(frames);
    for (auto &b : bindings) {
        auto job = m->configured.run_async(b);
        if (!job) {
            return fail(err, err_len, "run_async", job.status());
        }
        jobs.push_back(job.release());
    }
    for (auto &job : jobs) {
        st = job.wait(timeout);
        if (HAILO_SUCCESS != st) {
            return fail(err, err_len, "AsyncInferJob::wait", st);
        }
    }
    for (size_t o = 0; o < m->outputs.size(); o++) {
        Stream &s = m->outputs[o];
        size_t fs = static_cast<size_t>(s.info.frame_size);
        for (size_t f = 0; f < frames; f++) {
            std::memcpy(outputs[o] + (first + f) * fs, s.staging[f].get(), fs);
        }
    }
    return HAILO_SUCCESS;
}

} // namespace

extern "C" {

int32_t hrt_library_version(uint32_t *major, uint32_t *minor, uint32_t *revision)
{
    hailo_version_t v = {};
    hailo_status st = hailo_get_library_version(&v);
    if (HAILO_SUCCESS == st) {
        *major = v.major;
        *minor = v.minor;
        *revision = v.revision;
    }
    return static_cast<int32_t>(st);
}

const char *hrt_status_message(int32_t status)
{
    const char *m = hailo_get_status_message(static_cast<hailo_status>(status));
    return (nullptr == m) ? "unknown hailo_status" : m;
}

int32_t hrt_device_open(const char *group_id, hrt_device **out, char *err, size_t err_len)
{
    try {
        *out = nullptr;
        hailo_vdevice_params_t params = {};
        hailo_status st = hailo_init_vdevice_params(&params);
        if (HAILO_SUCCESS != st) {
            return fail(err, err_len, "hailo_init_vdevice_params", st);
        }
        if (nullptr != group_id) {
            // On a Hailo-10H the chip's own server lets every VDevice of one group share it.
            params.group_id = group_id;
        }
        auto vdevice = VDevice::create(params);
        if (!vdevice) {
            return fail(err, err_len, "VDevice::create", vdevice.status());
        }
        auto *dev = new hrt_device;
        dev->vdevice = std::shared_ptr<VDevice>(vdevice.release());
        *out = dev;
        return HAILO_SUCCESS;
    } catch (const std::bad_alloc &) {
        set_err(err, err_len, "out of host memory");
        return HAILO_OUT_OF_HOST_MEMORY;
    } catch (...) {
        set_err(err, err_len, "unexpected C++ exception in hrt_device_open");
        return HAILO_INTERNAL_FAILURE;
    }
}

int32_t hrt_device_identity(hrt_device *dev, hrt_identity *out, char *err, size_t err_len)
{
    try {
        std::memset(out, 0, sizeof(*out));
        auto devices = dev->vdevice->get_physical_devices();
        if (!devices) {
            return fail(err, err_len, "VDevice::get_physical_devices", devices.status());
        }
        if (devices.value().empty()) {
            set_err(err, err_len, "VDevice has no physical device");
            return HAILO_NOT_FOUND;
        }
        Device &d = devices.value()[0].get();
        const char *id = d.get_dev_id();
        if (nullptr != id) {
            copy_text(out->device_id, sizeof(out->device_id), id, std::strlen(id));
        }
        auto ident = d.identify();
        if (!ident) {
            return fail(err, err_len, "Device::identify", ident.status());
        }
        const hailo_device_identity_t &i = ident.value();
        out->fw_major = i.fw_version.major;
        out->fw_minor = i.fw_version.minor;
        out->fw_revision = i.fw_version.revision;
        out->device_architecture = static_cast<int32_t>(i.device_architecture);
        copy_text(out->board_name, sizeof(out->board_name), i.board_name,
                  std::min<size_t>(i.board_name_length, sizeof(i.board_name)));
        copy_text(out->product_name, sizeof(out->product_name), i.product_name,
                  std::min<size_t>(i.product_name_length, sizeof(i.product_name)));
        copy_text(out->serial_number, sizeof(out->serial_number), i.serial_number,
                  std::min<size_t>(i.serial_number_length, sizeof(i.serial_number)));
        return HAILO_SUCCESS;
    } catch (...) {
        set_err(err, err_len, "unexpected C++ exception in hrt_device_identity");
        return HAILO_INTERNAL_FAILURE;
    }
}

void hrt_device_close(hrt_device *dev)
{
    try {
        delete dev;
    } catch (...) {
    }
}

int32_t hrt_model_open(hrt_device *dev, const char *hef_path, uint16_t batch_size, int32_t input_type,
                       int32_t output_type, hrt_model **out, char *err, size_t err_len)
{
    try {
        *out = nullptr;
        std::unique_ptr<hrt_model> m(new hrt_model);
        m->vdevice = dev->vdevice;
        auto im = dev->vdevice->create_infer_model(std::string(hef_path));
        if (!im) {
            return fail(err, err_len, std::string("create_infer_model(") + hef_path + ")", im.status());
        }
        m->infer_model = im.release();
        if (0 != batch_size) {
            m->infer_model->set_batch_size(batch_size);
        }
        m->batch_size = batch_size;
        for (const auto &name : m->infer_model->get_input_names()) {
            auto s = m->infer_model->input(name);
            if (!s) {
                return fail(err, err_len, "InferModel::input(" + name + ")", s.status());
            }
            if (HAILO_FORMAT_TYPE_AUTO != input_type) {
                s.value().set_format_type(static_cast<hailo_format_type_t>(input_type));
            }
        }
        for (const auto &name : m->infer_model->get_output_names()) {
            auto s = m->infer_model->output(name);
            if (!s) {
                return fail(err, err_len, "InferModel::output(" + name + ")", s.status());
            }
            if (HAILO_FORMAT_TYPE_AUTO != output_type) {
                s.value().set_format_type(static_cast<hailo_format_type_t>(output_type));
            }
        }
        auto configured = m->infer_model->configure();
        if (!configured) {
            return fail(err, err_len, std::string("InferModel::configure(") + hef_path + ")", configured.status());
        }
        m->configured = configured.release();
        // Described after configure so the formats are the ones the run will use.
        for (const auto &name : m->infer_model->get_input_names()) {
            auto s = m->infer_model->input(name);
            if (!s) {
                return fail(err, err_len, "InferModel::input(" + name + ")", s.status());
            }
            Stream st;
            describe(s.value(), st);
            m->inputs.push_back(std::move(st));
        }
        for (const auto &name : m->infer_model->get_output_names()) {
            auto s = m->infer_model->output(name);
            if (!s) {
                return fail(err, err_len, "InferModel::output(" + name + ")", s.status());
            }
            Stream st;
            describe(s.value(), st);
            m->outputs.push_back(std::move(st));
        }
        auto q = m->configured.get_async_queue_size();
        m->queue_size = (q && q.value() > 0) ? q.value() : 1;
        *out = m.release();
        return HAILO_SUCCESS;
    } catch (const std::bad_alloc &) {
        set_err(err, err_len, "out of host memory");
        return HAILO_OUT_OF_HOST_MEMORY;
    } catch (...) {
        set_err(err, err_len, "unexpected C++ exception in hrt_model_open");
        return HAILO_INTERNAL_FAILURE;
    }
}

void hrt_model_close(hrt_model *model)
{
    if (nullptr == model) {
        return;
    }
    try {
        model->configured.shutdown();
        delete model;
    } catch (...) {
    }
}

uint32_t hrt_model_input_count(const hrt_model *model)
{
    return static_cast<uint32_t>(model->inputs.size());
}

uint32_t hrt_model_output_count(const hrt_model *model)
{
    return static_cast<uint32_t>(model->outputs.size());
}

static int32_t stream_info(const std::vector<Stream> &v, uint32_t index, hrt_stream_info *out)
{
    if (index >= v.size()) {
        return HAILO_INVALID_ARGUMENT;
    }
    *out = v[index].info;
    return HAILO_SUCCESS;
}

static int32_t stream_quant(const std::vector<Stream> &v, uint32_t index, uint32_t q, hrt_quant_info *out)
{
    if ((index >= v.size()) || (q >= v[index].quant.size())) {
        return HAILO_INVALID_ARGUMENT;
    }
    const hailo_quant_info_t &qi = v[index].quant[q];
    out->qp_zp = qi.qp_zp;
    out->qp_scale = qi.qp_scale;
    out->limvals_min = qi.limvals_min;
    out->limvals_max = qi.limvals_max;
    return HAILO_SUCCESS;
}

int32_t hrt_model_input_info(const hrt_model *model, uint32_t index, hrt_stream_info *out)
{
    return stream_info(model->inputs, index, out);
}

int32_t hrt_model_output_info(const hrt_model *model, uint32_t index, hrt_stream_info *out)
{
    return stream_info(model->outputs, index, out);
}

int32_t hrt_model_input_quant(const hrt_model *model, uint32_t index, uint32_t quant_index, hrt_quant_info *out)
{
    return stream_quant(model->inputs, index, quant_index, out);
}

int32_t hrt_model_output_quant(const hrt_model *model, uint32_t index, uint32_t quant_index, hrt_quant_info *out)
{
    return stream_quant(model->outputs, index, quant_index, out);
}

uint16_t hrt_model_batch_size(const hrt_model *model)
{
    return model->batch_size;
}

uint64_t hrt_model_async_queue_size(const hrt_model *model)
{
    return static_cast<uint64_t>(model->queue_size);
}

int32_t hrt_model_run(hrt_model *model, uint32_t frames, const uint8_t *const *inputs, const size_t *input_lens,
                      uint8_t *const *outputs, const size_t *output_lens, uint32_t timeout_ms, char *err,
                      size_t err_len)
{
    try {
        if (0 == frames) {
            return HAILO_SUCCESS;
        }
        for (size_t i = 0; i < model->inputs.size(); i++) {
            size_t want = static_cast<size_t>(model->inputs[i].info.frame_size) * frames;
            if (input_lens[i] != want) {
                set_err(err, err_len, std::string("input ") + model->inputs[i].info.name + " has " +
                                          std::to_string(input_lens[i]) + " bytes, expected " + std::to_string(want));
                return HAILO_INVALID_ARGUMENT;
            }
        }
        for (size_t o = 0; o < model->outputs.size(); o++) {
            size_t want = static_cast<size_t>(model->outputs[o].info.frame_size) * frames;
            if (output_lens[o] != want) {
                set_err(err, err_len, std::string("output ") + model->outputs[o].info.name + " has " +
                                          std::to_string(output_lens[o]) + " bytes, expected " + std::to_string(want));
                return HAILO_INVALID_ARGUMENT;
            }
        }
        size_t chunk = std::min<size_t>(frames, model->queue_size);
        if (!ensure_staging(model->inputs, chunk) || !ensure_staging(model->outputs, chunk)) {
            set_err(err, err_len, "cannot allocate page-aligned staging buffers");
            return HAILO_OUT_OF_HOST_MEMORY;
        }
        auto timeout = std::chrono::milliseconds(timeout_ms);
        for (size_t first = 0; first < frames; first += chunk) {
            size_t n = std::min<size_t>(chunk, frames - first);
            int32_t st = run_chunk(model, first, n, inputs, outputs, timeout, err, err_len);
            if (HAILO_SUCCESS != st) {
                return st;
            }
        }
        return HAILO_SUCCESS;
    } catch (const std::bad_alloc &) {
        set_err(err, err_len, "out of host memory");
        return HAILO_OUT_OF_HOST_MEMORY;
    } catch (...) {
        set_err(err, err_len, "unexpected C++ exception in hrt_model_run");
        return HAILO_INTERNAL_FAILURE;
    }
}

} // extern "C"
