//! The engine's errors: what went wrong below HTTP, one variant per different answer a client
//! gets (the http layer maps each to a status and an `error_type`, once).

use backend::BackendError;
use clip::preprocess::PreprocessError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The client's image cannot be used (its own variants say how).
    #[error(transparent)]
    Image(#[from] PreprocessError),
    #[error("{0}")]
    Invalid(String),
    #[error("no model {name:?}; configured: {}", known.join(", "))]
    ModelNotFound { name: String, known: Vec<String> },
    #[error("no label set {0:?} (GET /v1/label-sets lists them)")]
    LabelSetNotFound(String),
    #[error("{0}")]
    LabelSetStale(String),
    #[error("the device queue is full; retry later")]
    Overloaded,
    #[error("not ready: {0}")]
    NotReady(String),
    /// The model does not fit the models' memory budget now.
    #[error("{0}")]
    InsufficientMemory(String),
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
