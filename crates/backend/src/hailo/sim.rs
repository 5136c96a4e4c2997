//! A simulated Hailo device for tests: the same [`InferDevice`] contract as the HailoRT shim,
//! with HEF-like stream shapes, formats and quantisation, and faults injected as real
//! `hailo_status` codes. It computes simple, checkable functions instead of CLIP:
//! - image model: output[k] = mean of colour channel k % 3 over all pixels, scaled by (1 + k) / dim
//!   (pixel bytes taken raw, as the HEF takes UINT8 RGB and normalises inside);
//! - text model: output row t = mean of input rows 0..=t (causal, like CLIP's masked attention).

use hailort_sys::{
    status, DeviceIdentity, FormatOrder, FormatType, HrtError, InferDevice, InferModel, ModelDesc,
    OpenOptions, QuantInfo, StreamInfo, Version,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimFunction {
    Image,
    Text,
}

/// One simulated HEF.
#[derive(Debug, Clone)]
pub struct SimHef {
    pub function: SimFunction,
    pub input: StreamInfo,
    pub output: StreamInfo,
    /// Batch size HailoRT would pick when the caller passes 0.
    pub default_batch: u16,
    pub async_queue_size: usize,
}

fn stream(
    name: &str,
    h: u32,
    w: u32,
    c: u32,
    ty: FormatType,
    order: FormatOrder,
    quant: QuantInfo,
) -> StreamInfo {
    let mut s = StreamInfo {
        name: name.into(),
        height: h,
        width: w,
        features: c,
        format_type: ty,
        format_order: order,
        frame_size: 0,
        quant: vec![quant],
    };
    s.frame_size = s.elements() * ty.element_size().unwrap_or(1);
    s
}

impl SimHef {
    /// Like the model zoo's clip_resnet_50x4_image_encoder: UINT8 NHWC side x side x 3 in,
    /// 1 x 1 x dim out quantised as `out_type` (UINT8 or UINT16).
    pub fn image(side: u32, dim: u32, out_type: FormatType, quant: QuantInfo) -> Self {
        Self {
            function: SimFunction::Image,
            input: stream(
                "clip_resnet_50x4_image_encoder/input_layer1",
                side,
                side,
                3,
                FormatType::Uint8,
                FormatOrder::Nhwc,
                QuantInfo {
                    zp: 0.0,
                    scale: 1.0,
                },
            ),
            output: stream(
                "clip_resnet_50x4_image_encoder/conv89",
                1,
                1,
                dim,
                out_type,
                FormatOrder::Nc,
                quant,
            ),
            default_batch: 8,
            async_queue_size: 8,
        }
    }

    /// Like clip_resnet_50x4_text_encoder: 1 x 77 x dim in and out, UINT16 quantised.
    pub fn text(dim: u32, in_quant: QuantInfo, out_quant: QuantInfo) -> Self {
        Self {
            function: SimFunction::Text,
            input: stream(
                "clip_resnet_50x4_text_encoder/input_layer1",
                1,
                clip::CONTEXT_LENGTH as u32,
                dim,
                FormatType::Uint16,
                FormatOrder::Nhwc,
                in_quant,
            ),
            output: stream(
                "clip_resnet_50x4_text_encoder/ew_add24",
                1,
                clip::CONTEXT_LENGTH as u32,
                dim,
                FormatType::Uint16,
                FormatOrder::Nhwc,
                out_quant,
            ),
            default_batch: 1,
            async_queue_size: 4,
        }
    }
}

/// Faults and counters shared between a test and the device it handed to the backend.
#[derive(Debug, Default)]
pub struct SimState {
    /// Status returned by the next device opens (e.g. 74 when another process owns the device).
    pub open_status: Option<i32>,
    /// Status returned when opening a model (e.g. 26 for a HEF of another version).
    pub model_status: Option<i32>,
    /// This many next runs fail with `run_status`.
    pub failing_runs: u32,
    pub run_status: i32,
    pub device_opens: u32,
    pub model_opens: u32,
    pub runs: u32,
    /// Frames per run, in order.
    pub frames: Vec<usize>,
    /// Options of every model opened.
    pub opened: Vec<(String, OpenOptions)>,
    /// The VDevice group of each device open now, by open id (the chip's server admits a new
    /// VDevice only when every open one and it are in one named group).
    pub open_groups: Vec<(u32, Option<String>)>,
}

#[derive(Clone, Default)]
pub struct SimControl(pub Arc<Mutex<SimState>>);

impl SimControl {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the next `n` runs fail with `status`.
    pub fn fail_runs(&self, n: u32, status: i32) {
        let mut s = self.lock();
        s.failing_runs = n;
        s.run_status = status;
    }
}

/// HEFs by file name.
#[derive(Clone)]
pub struct SimDevice {
    hefs: HashMap<String, SimHef>,
    control: SimControl,
    /// Which entry of `open_groups` is this device's.
    open_id: u32,
    pub library: Version,
    pub firmware: Version,
}

impl SimDevice {
    /// Opens the simulated device alone (HailoRT's default group).
    pub fn open(hefs: HashMap<String, SimHef>, control: SimControl) -> Result<Self, HrtError> {
        Self::open_in(hefs, control, None)
    }

    /// Opens the simulated device in a VDevice group, failing like HailoRT when the test says
    /// so, or with HAILO_OUT_OF_PHYSICAL_DEVICES (74) when a device of another group, or of
    /// none, is open on the same chip (HailoRT 5.x, vdevice_hrpc_client.cpp).
    pub fn open_in(
        hefs: HashMap<String, SimHef>,
        control: SimControl,
        group: Option<&str>,
    ) -> Result<Self, HrtError> {
        let open_id;
        {
            let mut s = control.lock();
            s.device_opens += 1;
            if let Some(st) = s.open_status {
                return Err(HrtError::new(st, "VDevice::create failed"));
            }
            let shares = |g: &Option<String>| group.is_some() && g.as_deref() == group;
            if !s.open_groups.iter().all(|(_, g)| shares(g)) {
                return Err(HrtError::new(
                    hailort_sys::status::OUT_OF_PHYSICAL_DEVICES,
                    "VDevice::create failed: not enough free devices",
                ));
            }
            open_id = s.device_opens;
            s.open_groups.push((open_id, group.map(str::to_string)));
        }
        let v = Version {
            major: 5,
            minor: 1,
            revision: 1,
        };
        Ok(Self {
            hefs,
            control,
            open_id,
            library: v,
            firmware: v,
        })
    }
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        let id = self.open_id;
        self.control.lock().open_groups.retain(|(i, _)| *i != id);
    }
}

impl InferDevice for SimDevice {
    fn open_model(
        &mut self,
        hef: &Path,
        opts: &OpenOptions,
    ) -> Result<Box<dyn InferModel>, HrtError> {
        let mut s = self.control.lock();
        s.model_opens += 1;
        let what = format!("create_infer_model({})", hef.display());
        if let Some(st) = s.model_status {
            return Err(HrtError::new(st, format!("{what} failed")));
        }
        let file = hef
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spec =
            self.hefs.get(&file).cloned().ok_or_else(|| {
                HrtError::new(status::OPEN_FILE_FAILURE, format!("{what} failed"))
            })?;
        s.opened.push((file, *opts));
        let mut desc = ModelDesc {
            inputs: vec![spec.input.clone()],
            outputs: vec![spec.output.clone()],
            batch_size: if opts.batch_size == 0 {
                spec.default_batch
            } else {
                opts.batch_size
            },
            async_queue_size: spec.async_queue_size,
        };
        // Like InferStream::set_format_type: the host side takes the asked-for type.
        for (s, ty) in [
            (&mut desc.inputs[0], opts.input_type),
            (&mut desc.outputs[0], opts.output_type),
        ] {
            if ty != FormatType::Auto {
                s.format_type = ty;
                s.frame_size = s.elements() * ty.element_size().unwrap_or(1);
            }
        }
        Ok(Box::new(SimModel {
            spec,
            desc,
            control: self.control.clone(),
            dead: false,
        }))
    }

    fn identity(&mut self) -> Result<DeviceIdentity, HrtError> {
        Ok(DeviceIdentity {
            firmware: Some(self.firmware),
            architecture: "hailo10h".into(),
            board_name: "simulated".into(),
            product_name: "Hailo-10H (simulated)".into(),
            serial_number: String::new(),
            device_id: "sim:0".into(),
        })
    }

    fn library_version(&self) -> Option<Version> {
        Some(self.library)
    }
}

struct SimModel {
    spec: SimHef,
    desc: ModelDesc,
    control: SimControl,
    /// After a failed run HailoRT shuts the configured model down; so does the sim.
    dead: bool,
}

// The sim's (de)quantisation is written apart from `streams::{quantize, dequantize}` on purpose:
// the tests check the backend's conversions against this independent one.
fn decode(bytes: &[u8], s: &StreamInfo) -> Vec<f32> {
    let q = s.quant[0];
    match s.format_type {
        FormatType::Float32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        FormatType::Uint16 => bytes
            .chunks_exact(2)
            .map(|c| (u16::from_le_bytes([c[0], c[1]]) as f32 - q.zp) * q.scale)
            .collect(),
        _ => bytes.iter().map(|&b| (b as f32 - q.zp) * q.scale).collect(),
    }
}

fn encode(values: &[f32], s: &StreamInfo, out: &mut [u8]) {
    let q = s.quant[0];
    match s.format_type {
        FormatType::Float32 => {
            for (c, v) in out.chunks_exact_mut(4).zip(values) {
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        FormatType::Uint16 => {
            for (c, v) in out.chunks_exact_mut(2).zip(values) {
                let q = (v / q.scale + q.zp).round().clamp(0.0, u16::MAX as f32) as u16;
                c.copy_from_slice(&q.to_le_bytes());
            }
        }
        _ => {
            for (c, v) in out.iter_mut().zip(values) {
                *c = (v / q.scale + q.zp).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// The simulated image encoder on raw RGB bytes (HWC).
pub fn image_function(rgb: &[u8], dim: usize) -> Vec<f32> {
    let pixels = (rgb.len() / 3).max(1) as f32;
    let mut mean = [0f32; 3];
    for px in rgb.chunks_exact(3) {
        for c in 0..3 {
            mean[c] += px[c] as f32;
        }
    }
    (0..dim)
        .map(|k| mean[k % 3] / pixels / 255.0 * (1.0 + k as f32) / dim as f32)
        .collect()
}

/// The simulated text encoder: row t = mean of input rows 0..=t.
pub fn text_function(rows: &[f32], dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len());
    let mut sum = vec![0f32; dim];
    for (t, r) in rows.chunks_exact(dim).enumerate() {
        for (s, x) in sum.iter_mut().zip(r) {
            *s += x;
        }
        out.extend(sum.iter().map(|s| s / (t + 1) as f32));
    }
    out
}

impl InferModel for SimModel {
    fn desc(&self) -> &ModelDesc {
        &self.desc
    }

    fn run(
        &mut self,
        frames: usize,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        _timeout_ms: u32,
    ) -> Result<(), HrtError> {
        {
            let mut s = self.control.lock();
            s.runs += 1;
            s.frames.push(frames);
            if self.dead {
                return Err(HrtError::new(
                    status::INVALID_OPERATION,
                    "run_async failed: the configured model was shut down by an earlier failure",
                ));
            }
            if s.failing_runs > 0 {
                s.failing_runs -= 1;
                self.dead = true;
                return Err(HrtError::new(s.run_status, "AsyncInferJob::wait failed"));
            }
        }
        let (i, o) = (&self.desc.inputs[0], &self.desc.outputs[0]);
        if inputs.len() != 1 || outputs.len() != 1 {
            return Err(HrtError::new(
                status::INVALID_ARGUMENT,
                "one input and one output",
            ));
        }
        if inputs[0].len() != frames * i.frame_size || outputs[0].len() != frames * o.frame_size {
            return Err(HrtError::new(
                status::INVALID_ARGUMENT,
                format!(
                    "buffers of {} / {} bytes for {frames} frames of {} / {}",
                    inputs[0].len(),
                    outputs[0].len(),
                    i.frame_size,
                    o.frame_size
                ),
            ));
        }
        for f in 0..frames {
            let inb = &inputs[0][f * i.frame_size..(f + 1) * i.frame_size];
            let values = match self.spec.function {
                SimFunction::Image => image_function(inb, o.elements()),
                SimFunction::Text => text_function(&decode(inb, i), i.features as usize),
            };
            encode(
                &values,
                o,
                &mut outputs[0][f * o.frame_size..(f + 1) * o.frame_size],
            );
        }
        Ok(())
    }
}
