//! The engine's errors: what went wrong below HTTP, one variant per different answer a client
//! gets (the http layer maps each to a status and an `error_type`, once).

use backend::BackendError;
use clip::preprocess::PreprocessError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("invalid base64 image: {0}")]
    InvalidBase64(String),
    #[error("unsupported image: {0}")]
    UnsupportedImage(String),
    #[error("invalid image: {0}")]
    InvalidImage(String),
    #[error("image too large: {0}")]
    ImageTooLarge(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the device queue is full; retry later")]
    Overloaded,
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("backend unavailable: {0}")]
    Backend(String),
    #[error("shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<BackendError> for EngineError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Setup(m) => EngineError::NotReady(m),
            BackendError::Fault(m) => EngineError::Backend(m),
            // The engine prepared the input, so a refusal here is our bug, not the client's.
            BackendError::Input(m) => EngineError::Internal(m),
        }
    }
}

impl From<PreprocessError> for EngineError {
    fn from(e: PreprocessError) -> Self {
        match e {
            PreprocessError::InvalidBase64(m) => EngineError::InvalidBase64(m),
            PreprocessError::UnsupportedImage(m) => EngineError::UnsupportedImage(m),
            PreprocessError::InvalidImage(m) => EngineError::InvalidImage(m),
            PreprocessError::ImageTooLarge(m) => EngineError::ImageTooLarge(m),
            PreprocessError::Internal(m) => EngineError::Internal(m),
        }
    }
}
