//! Backend `hailo`: CLIP on a Hailo-10H through HailoRT's InferModel API (see hailort-sys).
//!
//! Everything the model needs is read from the HEFs at load time (stream names, shapes, formats,
//! quantisation, batch size), never assumed. Images go in as UINT8 RGB NHWC (normalisation is in
//! the HEF). Outputs come back as FLOAT32 dequantised by HailoRT, or quantised and dequantised
//! here, `(q - zp) * scale`. The text side, when it runs on the chip too, is in [`text`].
//!
//! The device code sits behind [`InferDevice`]: the HailoRT shim in production, [`sim`] in tests.

pub mod advice;
pub mod diagnostics;
pub mod files;
pub mod npz;
pub mod onnx_tables;
mod options;
pub mod preflight;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod streams;
pub mod text;

use crate::{Backend, BackendError};
use clip::{l2_normalize, ModelInfo, PreparedImage, TokenIds, CONTEXT_LENGTH};
#[cfg(feature = "hailo")]
use config::Settings;
use hailort_sys::{
    FormatOrder, FormatType, HrtError, InferDevice, InferModel, OpenOptions, StreamInfo,
};
pub use options::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use streams::{batch_of, check_output, check_stream, dequantize, quantize};

/// Opens the device in a HailoRT VDevice group (None: HailoRT's default, the device alone).
pub type DeviceOpener =
    Box<dyn FnMut(Option<&'static str>) -> Result<Box<dyn InferDevice>, HrtError> + Send>;

struct ImagePart {
    model: Box<dyn InferModel>,
    width: u32,
    height: u32,
    output: StreamInfo,
}

struct TextPart {
    model: Box<dyn InferModel>,
    tables: Arc<text::TextTables>,
    input: StreamInfo,
    output: StreamInfo,
    max_batch: usize,
}

/// Field order is drop order: models close before their device.
struct Loaded {
    image: ImagePart,
    text: Option<TextPart>,
    _device: Box<dyn InferDevice>,
}

pub struct HailoBackend {
    opts: HailoOptions,
    opener: DeviceOpener,
    /// Checked before opening the device; None skips the check (simulated device).
    preflight: Option<preflight::Host>,
    library_version: Option<String>,
    driver_version: Option<String>,
    firmware: Option<String>,
    architecture: Option<String>,
    /// Kept across reloads: the token table is ~126 MB and does not change.
    tables: Option<Arc<text::TextTables>>,
    state: Option<Loaded>,
}

impl HailoBackend {
    /// The real device, through the HailoRT shim.
    #[cfg(feature = "hailo")]
    pub fn from_settings(settings: &Settings) -> Self {
        let opener: DeviceOpener = Box::new(|group| {
            hailort_sys::HailoDevice::open(group).map(|d| Box::new(d) as Box<dyn InferDevice>)
        });
        let mut b = Self::with_opener(HailoOptions::from_settings(settings), opener);
        b.preflight = Some(preflight::Host::default());
        b.library_version = hailort_sys::library_version().map(|v| v.to_string());
        b
    }

    /// Any [`InferDevice`], e.g. [`sim::SimDevice`]; no host preflight.
    pub fn with_opener(opts: HailoOptions, opener: DeviceOpener) -> Self {
        Self {
            opts,
            opener,
            preflight: None,
            library_version: None,
            driver_version: None,
            firmware: None,
            architecture: None,
            tables: None,
            state: None,
        }
    }

    /// Check this host's device node and driver before opening the device.
    pub fn with_preflight(mut self, host: preflight::Host) -> Self {
        self.preflight = Some(host);
        self
    }

    fn context<'a>(&self, hef: Option<&'a Path>) -> advice::Context<'a> {
        advice::Context {
            hef,
            library_version: self.library_version.clone(),
            driver_version: self.driver_version.clone(),
            expected_arch: ARCH,
            holders: self
                .preflight
                .as_ref()
                .map(|h| h.device_holders())
                .unwrap_or_default(),
        }
    }

    fn setup(&self, e: &HrtError, hef: Option<&Path>) -> BackendError {
        BackendError::Setup(advice::explain(e, &self.context(hef)))
    }

    fn fault(&self, e: &HrtError, hef: &Path) -> BackendError {
        BackendError::Fault(advice::explain(e, &self.context(Some(hef))))
    }

    fn open_options(&self, input: FormatType) -> OpenOptions {
        OpenOptions {
            batch_size: self.opts.batch_size,
            input_type: if self.opts.host_float {
                input
            } else {
                FormatType::Auto
            },
            output_type: if self.opts.host_float {
                FormatType::Float32
            } else {
                FormatType::Auto
            },
        }
    }

    fn open_image(&self, device: &mut dyn InferDevice) -> Result<ImagePart, BackendError> {
        let hef = &self.opts.image_hef;
        // Images stay UINT8: the HEF normalises them itself.
        let model = device
            .open_model(hef, &self.open_options(FormatType::Auto))
            .map_err(|e| self.setup(&e, Some(hef)))?;
        let d = model.desc();
        let bad = |what: String| BackendError::Setup(format!("{}: {what}", hef.display()));
        if d.inputs.len() != 1 || d.outputs.len() != 1 {
            return Err(bad(format!(
                "an image encoder has one input and one output; this HEF has {} and {}",
                d.inputs.len(),
                d.outputs.len()
            )));
        }
        let (i, o) = (&d.inputs[0], &d.outputs[0]);
        if i.features != 3
            || i.format_type != FormatType::Uint8
            || !matches!(i.format_order, FormatOrder::Nhwc)
        {
            return Err(bad(format!(
                "input {} is {}x{}x{} {:?} {:?}; expected UINT8 NHWC RGB",
                i.name, i.height, i.width, i.features, i.format_type, i.format_order
            )));
        }
        if i.frame_size != i.elements() {
            return Err(bad(format!(
                "input {} frame is {} bytes, expected {}",
                i.name,
                i.frame_size,
                i.elements()
            )));
        }
        check_output(o).map_err(bad)?;
        Ok(ImagePart {
            width: i.width,
            height: i.height,
            output: o.clone(),
            model,
        })
    }

    fn open_text(
        &mut self,
        device: &mut dyn InferDevice,
        files: &TextFiles,
        dim: usize,
    ) -> Result<TextPart, BackendError> {
        let hef = &files.hef;
        let model = device
            .open_model(hef, &self.open_options(FormatType::Float32))
            .map_err(|e| self.setup(&e, Some(hef)))?;
        let d = model.desc();
        let bad = |what: String| BackendError::Setup(format!("{}: {what}", hef.display()));
        if d.inputs.len() != 1 || d.outputs.len() != 1 {
            return Err(bad(format!(
                "a text encoder has one input and one output; this HEF has {} and {}",
                d.inputs.len(),
                d.outputs.len()
            )));
        }
        let (i, o) = (d.inputs[0].clone(), d.outputs[0].clone());
        let tokens = i.height as usize * i.width as usize;
        if tokens != CONTEXT_LENGTH || o.elements() != i.elements() {
            return Err(bad(format!(
                "input {} is {}x{}x{} and output {} is {}x{}x{}; expected {CONTEXT_LENGTH} tokens in and out",
                i.name, i.height, i.width, i.features, o.name, o.height, o.width, o.features
            )));
        }
        check_stream(&i).map_err(bad)?;
        check_output(&o).map_err(bad)?;
        let features = i.features as usize;
        let tables = match &self.tables {
            Some(t) if t.dim() == features => t.clone(),
            _ => {
                let t = text::TextTables::load(&files.embeddings, features)
                    .map_err(BackendError::Setup)?;
                let t = Arc::new(t);
                self.tables = Some(t.clone());
                t
            }
        };
        if tables.out_dim() != dim {
            return Err(BackendError::Setup(format!(
                "{}: text projection gives {} dimensions but the image encoder {} gives {dim}",
                files.embeddings.display(),
                tables.out_dim(),
                self.opts.image_hef.display()
            )));
        }
        let max_batch = batch_of(model.as_ref());
        Ok(TextPart {
            model,
            tables,
            input: i,
            output: o,
            max_batch,
        })
    }

    fn loaded(&mut self) -> Result<&mut Loaded, BackendError> {
        self.state.as_mut().ok_or_else(|| {
            BackendError::Fault("the Hailo device is not open (load failed or not called)".into())
        })
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

impl Backend for HailoBackend {
    fn name(&self) -> String {
        "hailo".into()
    }

    fn unload(&mut self) {
        // Models before the device (field order), and the ~126 MB token table with them.
        self.state = None;
        self.tables = None;
    }

    fn load(&mut self) -> Result<ModelInfo, BackendError> {
        // Close the old device first: only one VDevice may be open.
        self.state = None;
        if let Some(host) = &self.preflight {
            self.driver_version = host.driver_version();
            if let Some(problem) = host.problem() {
                return Err(BackendError::Setup(problem));
            }
        }
        let mut device = (self.opener)(self.opts.group_id()).map_err(|e| self.setup(&e, None))?;
        if let Some(v) = device.library_version() {
            self.library_version = Some(v.to_string());
        }
        match device.identity() {
            Ok(id) => {
                self.firmware = id.firmware.map(|v| v.to_string());
                self.architecture = Some(id.architecture);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot identify the Hailo device; firmware version unknown");
                self.firmware = None;
            }
        }
        let image = self.open_image(device.as_mut())?;
        let dim = image.output.elements();
        let text = match self.opts.text.clone() {
            Some(files) => Some(self.open_text(device.as_mut(), &files, dim)?),
            None => None,
        };
        let info = ModelInfo {
            name: self.opts.model_name.clone(),
            embedding_dimension: dim,
            image_size: (image.width, image.height),
            max_image_batch: batch_of(image.model.as_ref()),
            max_text_batch: text.as_ref().map_or(1, |t| t.max_batch),
            tokenizer: Default::default(),
            scoring: Default::default(),
        };
        tracing::info!(
            hef = %self.opts.image_hef.display(),
            input = %format!("{}x{}x3", image.width, image.height),
            output = %image.output.name,
            output_format = ?image.output.format_type,
            batch = info.max_image_batch,
            "Hailo image encoder configured"
        );
        self.state = Some(Loaded {
            image,
            text,
            _device: device,
        });
        Ok(info)
    }

    fn encode_images(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError> {
        let timeout = self.opts.timeout_ms;
        let hef = self.opts.image_hef.clone();
        let loaded = self.loaded()?;
        let part = &mut loaded.image;
        let (w, h) = (part.width, part.height);
        if let Some(bad) = images
            .iter()
            .find(|i| i.width != w || i.height != h || i.rgb.len() != (w * h * 3) as usize)
        {
            return Err(BackendError::Input(format!(
                "image is {}x{} ({} bytes), model takes {w}x{h} RGB",
                bad.width,
                bad.height,
                bad.rgb.len()
            )));
        }
        let input: Vec<u8> = images.iter().flat_map(|i| i.rgb.iter().copied()).collect();
        let frame = part.output.frame_size;
        let mut output = vec![0u8; frame * images.len()];
        let run = part
            .model
            .run(images.len(), &[&input], &mut [&mut output], timeout);
        let out_stream = part.output.clone();
        if let Err(e) = run {
            return Err(self.fault(&e, &hef));
        }
        Ok(output
            .chunks_exact(frame)
            .map(|f| {
                let mut v = dequantize(f, &out_stream);
                l2_normalize(&mut v);
                v
            })
            .collect())
    }

    fn encode_texts(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError> {
        let timeout = self.opts.timeout_ms;
        let hef = self.opts.text.as_ref().map(|t| t.hef.clone());
        let loaded = self.loaded()?;
        let Some(part) = loaded.text.as_mut() else {
            return Err(BackendError::Setup(
                "texts are not encoded on the Hailo device in this configuration (backend.text)"
                    .into(),
            ));
        };
        let mut input = Vec::with_capacity(part.input.frame_size * texts.len());
        for ids in texts {
            let rows = part.tables.input_rows(ids).map_err(BackendError::Input)?;
            quantize(&rows, &part.input, &mut input);
        }
        let frame = part.output.frame_size;
        let mut output = vec![0u8; frame * texts.len()];
        if let Err(e) = part
            .model
            .run(texts.len(), &[&input], &mut [&mut output], timeout)
        {
            let hef = hef.unwrap_or_default();
            return Err(self.fault(&e, &hef));
        }
        Ok(output
            .chunks_exact(frame)
            .zip(texts)
            .map(|(f, ids)| {
                let rows = dequantize(f, &part.output);
                let mut v = part.tables.pool_and_project(ids, &rows);
                l2_normalize(&mut v);
                v
            })
            .collect())
    }

    fn versions(&self) -> BTreeMap<String, String> {
        let unknown = || "unknown".to_string();
        let mut v = BTreeMap::from([
            (
                "hailort".to_string(),
                self.library_version.clone().unwrap_or_else(unknown),
            ),
            (
                "hailo_driver".to_string(),
                self.driver_version.clone().unwrap_or_else(unknown),
            ),
            (
                "hailo_firmware".to_string(),
                self.firmware.clone().unwrap_or_else(unknown),
            ),
            (
                "hailo_device".to_string(),
                self.architecture.clone().unwrap_or_else(unknown),
            ),
            ("image_hef".to_string(), file_name(&self.opts.image_hef)),
        ]);
        if let Some(t) = &self.opts.text {
            v.insert("text_hef".into(), file_name(&t.hef));
        }
        v
    }
}
