//! What the device thread publishes for /health and /info without going through the queue.

use crate::backend::ModelInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::RwLock;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Phase {
    /// Lazy start: the model loads on the first request.
    NotLoaded,
    Loading,
    Ready,
    /// A device fault; the backend is being rebuilt.
    Unhealthy(String),
    /// Loading failed (files, config, driver): needs the operator.
    Failed(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub phase: Phase,
    pub model: Option<ModelInfo>,
    pub versions: BTreeMap<String, String>,
}

pub struct Shared {
    inner: RwLock<Snapshot>,
}

impl Shared {
    pub fn new() -> Self {
        Self {
            inner: RwLock::new(Snapshot {
                phase: Phase::NotLoaded,
                model: None,
                versions: BTreeMap::new(),
            }),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.read().unwrap().clone()
    }

    pub fn set_phase(&self, phase: Phase) {
        self.inner.write().unwrap().phase = phase;
    }

    pub fn set_model(&self, info: ModelInfo, versions: BTreeMap<String, String>) {
        let mut s = self.inner.write().unwrap();
        s.model = Some(info);
        s.versions = versions;
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}
