//! The jobs the engine hands the device thread, and the bounded queue they wait in.

use crate::EngineError;
use clip::{ModelInfo, PreparedImage, TokenIds};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Instant;
use tokio::sync::oneshot;

/// What a caller gets back with its embeddings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// Device time of the batch(es) this job rode in.
    pub inference_ms: f64,
}

pub type Embeddings = Vec<Vec<f32>>;
pub type Reply = oneshot::Sender<Result<(Embeddings, Timing), EngineError>>;

pub enum Job {
    Images {
        items: Vec<PreparedImage>,
        enqueued: Instant,
        reply: Reply,
    },
    Texts {
        items: Vec<TokenIds>,
        enqueued: Instant,
        reply: Reply,
    },
    /// Load the model (lazy start) and report what it is.
    Load {
        reply: oneshot::Sender<Result<ModelInfo, EngineError>>,
    },
    /// Free the model for another one (the memory budget asks; the next job loads it again).
    Unload,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Image,
    Text,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Text => "text",
        }
    }
}

impl Job {
    pub(crate) fn kind(&self) -> Option<Kind> {
        match self {
            Job::Images { .. } => Some(Kind::Image),
            Job::Texts { .. } => Some(Kind::Text),
            Job::Load { .. } | Job::Unload => None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Job::Images { items, .. } => items.len(),
            Job::Texts { items, .. } => items.len(),
            Job::Load { .. } | Job::Unload => 0,
        }
    }

    pub(crate) fn abandoned(&self) -> bool {
        match self {
            Job::Images { reply, .. } | Job::Texts { reply, .. } => reply.is_closed(),
            Job::Load { reply } => reply.is_closed(),
            Job::Unload => false,
        }
    }
}

/// The sending half, held by the engine.
#[derive(Clone)]
pub struct Queue {
    pub(crate) tx: SyncSender<Job>,
    /// The model's name, for the metrics.
    pub(crate) model: std::sync::Arc<str>,
}

impl Queue {
    /// Never blocks: a full queue is the client's signal to back off (429).
    pub fn submit(&self, job: Job) -> Result<(), EngineError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("hailo_clip_queue_rejected_total", "model" => self.model.to_string()).increment(1);
                Err(EngineError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => Err(EngineError::ShuttingDown),
        }
    }
}

/// Answers a job with an error, whatever its kind.
pub(crate) fn reply_err(job: Job, e: EngineError) {
    match job {
        Job::Images { reply, .. } | Job::Texts { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Load { reply } => {
            let _ = reply.send(Err(e));
        }
        Job::Unload => {}
    }
}
