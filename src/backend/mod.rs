//! The backend trait: what the device thread calls. Synchronous and object-safe, so the
//! device thread can own a `Box<dyn Backend>` and nothing else touches the hardware.

pub mod hailo;
pub mod mock;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod split;

use crate::config::{BackendKind, Settings};
use std::collections::BTreeMap;

/// Number of tokens in a CLIP text input (SOT + text + EOT, zero padded).
pub const CONTEXT_LENGTH: usize = 77;

/// An image already decoded, oriented and resized to the backend's input size:
/// packed RGB, row-major HWC, `width * height * 3` bytes.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Token ids for one text, `CONTEXT_LENGTH` long, zero padded after the end-of-text token.
pub type TokenIds = [u32; CONTEXT_LENGTH];

/// What the engine needs to know about the loaded model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub embedding_dimension: usize,
    /// (width, height) the image encoder takes.
    pub image_size: (u32, u32),
    pub max_image_batch: usize,
    pub max_text_batch: usize,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// Configuration or model files are wrong: no retry will help until the operator acts.
    #[error("{0}")]
    Setup(String),
    /// The device or runtime failed during a run: the backend must be rebuilt.
    #[error("{0}")]
    Fault(String),
    /// The caller handed the backend something it cannot take.
    #[error("{0}")]
    Input(String),
}

pub trait Backend: Send {
    /// "mock", "onnx", "hailo", or "hailo+onnx" for a split.
    fn name(&self) -> String;
    /// Loads models and opens devices; called once before the first encode and again to recover.
    fn load(&mut self) -> Result<ModelInfo, BackendError>;
    /// One embedding per image, not necessarily normalised; at most `max_image_batch` images.
    fn encode_images(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError>;
    /// One embedding per text, not necessarily normalised; at most `max_text_batch` texts.
    fn encode_texts(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError>;
    /// Library, driver, firmware and model versions for /info.
    fn versions(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// Builds the configured backend; nothing here falls back to another kind.
pub fn build(settings: &Settings) -> Result<Box<dyn Backend>, BackendError> {
    let image = build_kind(settings.backend.kind, settings)?;
    let text_kind = settings.text_backend();
    if text_kind == settings.backend.kind {
        return Ok(image);
    }
    let text = build_kind(text_kind, settings)?;
    Ok(Box::new(split::SplitBackend::new(image, text)))
}

fn build_kind(kind: BackendKind, settings: &Settings) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Mock => Ok(Box::new(mock::MockBackend::new(
            &settings.clip.model,
            settings.backend.mock.clone(),
        ))),
        #[cfg(feature = "onnx")]
        BackendKind::Onnx => Ok(Box::new(onnx::OnnxBackend::new(
            onnx::OnnxOptions::from_settings(settings),
        ))),
        #[cfg(not(feature = "onnx"))]
        BackendKind::Onnx => Err(BackendError::Setup(
            "backend \"onnx\" needs a build with the `onnx` cargo feature (on by default); \
             this binary was built without it"
                .into(),
        )),
        #[cfg(feature = "hailo")]
        BackendKind::Hailo => Ok(Box::new(hailo::HailoBackend::from_settings(settings))),
        #[cfg(not(feature = "hailo"))]
        BackendKind::Hailo => Err(BackendError::Setup(
            "backend \"hailo\" needs a build with the `hailo` cargo feature (HailoRT 5.x); \
             this binary was built without it"
                .into(),
        )),
    }
}

pub fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
