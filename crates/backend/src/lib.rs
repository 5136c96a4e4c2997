//! The backend trait: what the device thread calls. Synchronous and object-safe, so the
//! device thread can own a `Box<dyn Backend>` and nothing else touches the hardware.

mod factory;
pub mod hailo;
pub mod mock;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod split;

use clip::{ModelInfo, PreparedImage, TokenIds};
pub use factory::{build, memory_estimate, model_files, model_identity};
use std::collections::BTreeMap;

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
    /// Frees what `load` took (sessions, the device); the next call is `load` again.
    fn unload(&mut self) {}
    /// Library, driver, firmware and model versions for /info.
    fn versions(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}
