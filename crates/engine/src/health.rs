//! What the device thread publishes for /health and /info, on a watch channel: readers never
//! go through the queue, and waiters wake on the change instead of polling.

use clip::ModelInfo;
use serde::Serialize;
use std::collections::BTreeMap;
use tokio::sync::watch;

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

/// The publishing side, held by the device thread (and the engine, to set the first phase).
#[derive(Clone)]
pub struct HealthPublisher {
    tx: watch::Sender<Snapshot>,
}

impl HealthPublisher {
    pub fn new() -> Self {
        let (tx, _) = watch::channel(Snapshot {
            phase: Phase::NotLoaded,
            model: None,
            versions: BTreeMap::new(),
        });
        Self { tx }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.tx.subscribe()
    }

    pub fn set_phase(&self, phase: Phase) {
        self.tx.send_modify(|s| s.phase = phase);
    }

    pub fn set_model(&self, info: ModelInfo, versions: BTreeMap<String, String>) {
        self.tx.send_modify(|s| {
            s.model = Some(info);
            s.versions = versions;
        });
    }
}

impl Default for HealthPublisher {
    fn default() -> Self {
        Self::new()
    }
}
