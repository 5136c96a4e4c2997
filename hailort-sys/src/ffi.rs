//! The shim's C functions and the safe wrappers over them (feature `link`).

use crate::{
    architecture_name, DeviceIdentity, FormatOrder, FormatType, HrtError, InferDevice, InferModel,
    ModelDesc, OpenOptions, QuantInfo, StreamInfo, Version,
};
use std::ffi::{c_char, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const NAME_MAX: usize = 256;
const TEXT_MAX: usize = 64;
const ERR_LEN: usize = 1024;

#[repr(C)]
struct RawDevice {
    _private: [u8; 0],
}

#[repr(C)]
struct RawModel {
    _private: [u8; 0],
}

#[repr(C)]
struct RawStreamInfo {
    name: [c_char; NAME_MAX],
    height: u32,
    width: u32,
    features: u32,
    format_type: i32,
    format_order: i32,
    format_flags: i32,
    frame_size: u64,
    quant_count: u32,
}

#[repr(C)]
#[derive(Default)]
struct RawQuantInfo {
    qp_zp: f32,
    qp_scale: f32,
    limvals_min: f32,
    limvals_max: f32,
}

#[repr(C)]
struct RawIdentity {
    fw_major: u32,
    fw_minor: u32,
    fw_revision: u32,
    device_architecture: i32,
    board_name: [c_char; TEXT_MAX],
    product_name: [c_char; TEXT_MAX],
    serial_number: [c_char; TEXT_MAX],
    device_id: [c_char; TEXT_MAX],
}

extern "C" {
    fn hrt_library_version(major: *mut u32, minor: *mut u32, revision: *mut u32) -> i32;
    fn hrt_status_message(status: i32) -> *const c_char;
    fn hrt_device_open(
        group_id: *const c_char,
        out: *mut *mut RawDevice,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn hrt_device_identity(
        dev: *mut RawDevice,
        out: *mut RawIdentity,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn hrt_device_close(dev: *mut RawDevice);
    fn hrt_model_open(
        dev: *mut RawDevice,
        hef_path: *const c_char,
        batch_size: u16,
        input_type: i32,
        output_type: i32,
        out: *mut *mut RawModel,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
    fn hrt_model_close(model: *mut RawModel);
    fn hrt_model_input_count(model: *const RawModel) -> u32;
    fn hrt_model_output_count(model: *const RawModel) -> u32;
    fn hrt_model_input_info(model: *const RawModel, index: u32, out: *mut RawStreamInfo) -> i32;
    fn hrt_model_output_info(model: *const RawModel, index: u32, out: *mut RawStreamInfo) -> i32;
    fn hrt_model_input_quant(
        model: *const RawModel,
        index: u32,
        quant_index: u32,
        out: *mut RawQuantInfo,
    ) -> i32;
    fn hrt_model_output_quant(
        model: *const RawModel,
        index: u32,
        quant_index: u32,
        out: *mut RawQuantInfo,
    ) -> i32;
    fn hrt_model_batch_size(model: *const RawModel) -> u16;
    fn hrt_model_async_queue_size(model: *const RawModel) -> u64;
    fn hrt_model_run(
        model: *mut RawModel,
        frames: u32,
        inputs: *const *const u8,
        input_lens: *const usize,
        outputs: *const *mut u8,
        output_lens: *const usize,
        timeout_ms: u32,
        err: *mut c_char,
        err_len: usize,
    ) -> i32;
}

fn text(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn error(status: i32, err: &[c_char]) -> HrtError {
    let msg = text(err);
    HrtError::new(
        status,
        if msg.is_empty() {
            status_name(status)
        } else {
            msg
        },
    )
}

/// HailoRT's name for a status, e.g. "HAILO_INVALID_HEF".
pub fn status_name(status: i32) -> String {
    // SAFETY: the shim returns a static NUL-terminated string for any value.
    unsafe { CStr::from_ptr(hrt_status_message(status)) }
        .to_string_lossy()
        .into_owned()
}

/// The libhailort actually loaded at run time.
pub fn library_version() -> Option<Version> {
    let (mut major, mut minor, mut revision) = (0, 0, 0);
    // SAFETY: three valid out-pointers.
    let st = unsafe { hrt_library_version(&mut major, &mut minor, &mut revision) };
    (st == 0).then_some(Version {
        major,
        minor,
        revision,
    })
}

/// HailoRT's VDevice over the first free device; owned by one thread at a time.
pub struct HailoDevice {
    raw: *mut RawDevice,
}

// SAFETY: the VDevice is only reached through &mut self from the one thread that owns it; HailoRT
// itself is thread-safe for these calls.
unsafe impl Send for HailoDevice {}

impl HailoDevice {
    /// `group`: HailoRT's VDevice group id (`Some("SHARED")` shares the chip with the other
    /// processes of that group); None: HailoRT's default, the device for this process alone.
    pub fn open(group: Option<&str>) -> Result<Self, HrtError> {
        let group = group
            .map(|g| {
                CString::new(g).map_err(|_| {
                    HrtError::new(
                        crate::status::INVALID_ARGUMENT,
                        "group id contains a NUL byte",
                    )
                })
            })
            .transpose()?;
        let mut raw = std::ptr::null_mut();
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: NUL-terminated group id or null, valid out-pointer and error buffer.
        let st = unsafe {
            hrt_device_open(
                group.as_ref().map_or(std::ptr::null(), |g| g.as_ptr()),
                &mut raw,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if st != 0 || raw.is_null() {
            return Err(error(st, &err));
        }
        Ok(Self { raw })
    }
}

impl Drop for HailoDevice {
    fn drop(&mut self) {
        // SAFETY: raw came from hrt_device_open and is closed exactly once.
        unsafe { hrt_device_close(self.raw) }
    }
}

impl InferDevice for HailoDevice {
    fn open_model(
        &mut self,
        hef: &Path,
        opts: &OpenOptions,
    ) -> Result<Box<dyn InferModel>, HrtError> {
        let path = CString::new(hef.as_os_str().as_bytes()).map_err(|_| {
            HrtError::new(
                crate::status::INVALID_ARGUMENT,
                "HEF path contains a NUL byte",
            )
        })?;
        let mut raw = std::ptr::null_mut();
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: live device, NUL-terminated path, valid out-pointer and error buffer.
        let st = unsafe {
            hrt_model_open(
                self.raw,
                path.as_ptr(),
                opts.batch_size,
                opts.input_type.raw(),
                opts.output_type.raw(),
                &mut raw,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if st != 0 || raw.is_null() {
            return Err(error(st, &err));
        }
        let mut model = HailoModel {
            raw,
            desc: ModelDesc {
                inputs: Vec::new(),
                outputs: Vec::new(),
                batch_size: 0,
                async_queue_size: 1,
            },
        };
        model.desc = model.describe()?;
        Ok(Box::new(model))
    }

    fn identity(&mut self) -> Result<DeviceIdentity, HrtError> {
        // SAFETY: plain-old-data struct the shim fills in full.
        let mut raw: RawIdentity = unsafe { std::mem::zeroed() };
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: live device, valid out-pointer and error buffer.
        let st = unsafe { hrt_device_identity(self.raw, &mut raw, err.as_mut_ptr(), err.len()) };
        if st != 0 {
            return Err(error(st, &err));
        }
        Ok(DeviceIdentity {
            firmware: Some(Version {
                major: raw.fw_major,
                minor: raw.fw_minor,
                revision: raw.fw_revision,
            }),
            architecture: architecture_name(raw.device_architecture).to_string(),
            board_name: text(&raw.board_name),
            product_name: text(&raw.product_name),
            serial_number: text(&raw.serial_number),
            device_id: text(&raw.device_id),
        })
    }

    fn library_version(&self) -> Option<Version> {
        library_version()
    }
}

/// A configured HEF; closing it (Drop) shuts its inference down.
pub struct HailoModel {
    raw: *mut RawModel,
    desc: ModelDesc,
}

// SAFETY: see HailoDevice.
unsafe impl Send for HailoModel {}

impl HailoModel {
    fn describe(&self) -> Result<ModelDesc, HrtError> {
        type InfoFn = unsafe extern "C" fn(*const RawModel, u32, *mut RawStreamInfo) -> i32;
        type QuantFn = unsafe extern "C" fn(*const RawModel, u32, u32, *mut RawQuantInfo) -> i32;
        let streams =
            |count: u32, info: InfoFn, quant: QuantFn| -> Result<Vec<StreamInfo>, HrtError> {
                (0..count)
                    .map(|i| {
                        // SAFETY: plain-old-data out struct; i < count.
                        let mut raw: RawStreamInfo = unsafe { std::mem::zeroed() };
                        let st = unsafe { info(self.raw, i, &mut raw) };
                        if st != 0 {
                            return Err(HrtError::new(st, format!("stream {i}: no info")));
                        }
                        let q = (0..raw.quant_count)
                            .map(|qi| {
                                let mut r = RawQuantInfo::default();
                                // SAFETY: qi < quant_count.
                                let st = unsafe { quant(self.raw, i, qi, &mut r) };
                                (st == 0).then_some(QuantInfo {
                                    zp: r.qp_zp,
                                    scale: r.qp_scale,
                                })
                            })
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| {
                                HrtError::new(crate::status::INTERNAL_FAILURE, "quant info")
                            })?;
                        Ok(StreamInfo {
                            name: text(&raw.name),
                            height: raw.height,
                            width: raw.width,
                            features: raw.features,
                            format_type: FormatType::from_raw(raw.format_type),
                            format_order: FormatOrder::from_raw(raw.format_order),
                            frame_size: raw.frame_size as usize,
                            quant: q,
                        })
                    })
                    .collect()
            };
        // SAFETY: live model handle.
        let (n_in, n_out, batch, queue) = unsafe {
            (
                hrt_model_input_count(self.raw),
                hrt_model_output_count(self.raw),
                hrt_model_batch_size(self.raw),
                hrt_model_async_queue_size(self.raw),
            )
        };
        Ok(ModelDesc {
            inputs: streams(n_in, hrt_model_input_info, hrt_model_input_quant)?,
            outputs: streams(n_out, hrt_model_output_info, hrt_model_output_quant)?,
            batch_size: batch,
            async_queue_size: queue.max(1) as usize,
        })
    }
}

impl Drop for HailoModel {
    fn drop(&mut self) {
        // SAFETY: raw came from hrt_model_open and is closed exactly once.
        unsafe { hrt_model_close(self.raw) }
    }
}

impl InferModel for HailoModel {
    fn desc(&self) -> &ModelDesc {
        &self.desc
    }

    fn run(
        &mut self,
        frames: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        timeout_ms: u32,
    ) -> Result<(), HrtError> {
        if inputs.len() != self.desc.inputs.len() || outputs.len() != self.desc.outputs.len() {
            return Err(HrtError::new(
                crate::status::INVALID_ARGUMENT,
                format!(
                    "model has {} inputs and {} outputs, got {} and {} buffers",
                    self.desc.inputs.len(),
                    self.desc.outputs.len(),
                    inputs.len(),
                    outputs.len()
                ),
            ));
        }
        let frames = u32::try_from(frames)
            .map_err(|_| HrtError::new(crate::status::INVALID_ARGUMENT, "too many frames"))?;
        let in_ptrs: Vec<*const u8> = inputs.iter().map(|b| b.as_ptr()).collect();
        let in_lens: Vec<usize> = inputs.iter().map(|b| b.len()).collect();
        let out_lens: Vec<usize> = outputs.iter().map(|b| b.len()).collect();
        let out_ptrs: Vec<*mut u8> = outputs.iter_mut().map(|b| b.as_mut_ptr()).collect();
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: pointer/length arrays match the model's stream counts (checked above) and the
        // buffers outlive the call; the shim checks every length against frames * frame_size.
        let st = unsafe {
            hrt_model_run(
                self.raw,
                frames,
                in_ptrs.as_ptr(),
                in_lens.as_ptr(),
                out_ptrs.as_ptr(),
                out_lens.as_ptr(),
                timeout_ms,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if st != 0 {
            return Err(error(st, &err));
        }
        Ok(())
    }
}
