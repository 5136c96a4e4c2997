//! The models' memory budget (`limits.models_memory_mb`): which models may be loaded at once.
//!
//! A device thread about to load its model claims the model's bytes here. When they do not fit,
//! the least recently used other loaded models are asked to unload through their own queues (so
//! each device thread alone still touches its backend) and the claim waits for them. A victim
//! answers the jobs queued before the request to unload first, so no accepted job is lost; a
//! working set larger than the budget therefore swaps models in turn, at a load per switch.

use crate::queue::Job;
use crate::EngineError;
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a load waits for other models to unload before its request is refused.
const CLAIM_WAIT: Duration = Duration::from_secs(30);
/// How often a claim asks again whose queue was full the last time.
const RETRY: Duration = Duration::from_millis(100);
const MIB: u64 = 1 << 20;

pub struct MemoryBudget {
    /// Bytes; 0: no budget.
    limit: u64,
    models: Mutex<Vec<Entry>>,
    freed: Condvar,
}

struct Entry {
    model: String,
    /// What the model holds while loaded (0 while not).
    bytes: u64,
    last_used: Instant,
    unload_asked: bool,
    queue: SyncSender<Job>,
}

impl MemoryBudget {
    pub fn new(limit_mb: u64) -> Self {
        MemoryBudget {
            limit: limit_mb * MIB,
            models: Mutex::new(Vec::new()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.models.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register(&self, model: &str, queue: SyncSender<Job>) {
        self.lock().push(Entry {
            model: model.to_string(),
            bytes: 0,
            last_used: Instant::now(),
            unload_asked: false,
            queue,
        });
    }

    /// Drops the model's queue sender, so its device thread can end with its engine.
    pub(crate) fn unregister(&self, model: &str) {
        self.lock().retain(|e| e.model != model);
        self.freed.notify_all();
    }

    /// Counts `bytes` for `model` from now on, after unloading others as needed.
    pub(crate) fn claim(&self, model: &str, bytes: u64) -> Result<(), EngineError> {
        if self.limit > 0 && bytes > self.limit {
            return Err(EngineError::InsufficientMemory(format!(
                "model {model} needs {} MiB, more than limits.models_memory_mb = {} MiB \
                 allows for all models together; raise the budget, or set the model's \
                 backend.memory_mb if the estimate (its file sizes) is too high",
                bytes.div_ceil(MIB),
                self.limit / MIB
            )));
        }
        let deadline = Instant::now() + CLAIM_WAIT;
        let mut models = self.lock();
        loop {
            let others: u64 = models
                .iter()
                .filter(|e| e.model != model)
                .map(|e| e.bytes)
                .sum();
            if self.limit == 0 || others + bytes <= self.limit {
                if let Some(me) = models.iter_mut().find(|e| e.model == model) {
                    me.bytes = bytes;
                    me.last_used = Instant::now();
                }
                metrics::gauge!("hailo_clip_model_memory_bytes", "model" => model.to_string())
                    .set(bytes as f64);
                return Ok(());
            }
            ask_to_unload(&mut models, model, others + bytes - self.limit);
            let now = Instant::now();
            if now >= deadline {
                let held: Vec<String> = models
                    .iter()
                    .filter(|e| e.bytes > 0 && e.model != model)
                    .map(|e| format!("{} ({} MiB)", e.model, e.bytes.div_ceil(MIB)))
                    .collect();
                return Err(EngineError::InsufficientMemory(format!(
                    "model {model} needs {} MiB of limits.models_memory_mb = {} MiB, and the \
                     loaded models did not unload within {} s: {}",
                    bytes.div_ceil(MIB),
                    self.limit / MIB,
                    CLAIM_WAIT.as_secs(),
                    held.join(", ")
                )));
            }
            models = self
                .freed
                .wait_timeout(models, RETRY.min(deadline - now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The model is not loaded any more.
    pub(crate) fn release(&self, model: &str) {
        let mut models = self.lock();
        if let Some(me) = models.iter_mut().find(|e| e.model == model) {
            me.bytes = 0;
            me.unload_asked = false;
        }
        drop(models);
        metrics::gauge!("hailo_clip_model_memory_bytes", "model" => model.to_string()).set(0.0);
        self.freed.notify_all();
    }

    /// The model just ran a batch: the last to be chosen for unloading.
    pub(crate) fn touch(&self, model: &str) {
        if self.limit == 0 {
            return;
        }
        if let Some(me) = self.lock().iter_mut().find(|e| e.model == model) {
            me.last_used = Instant::now();
        }
    }

    /// MiB the model is counted at while loaded (None while it is not).
    pub fn held_mb(&self, model: &str) -> Option<u64> {
        self.lock()
            .iter()
            .find(|e| e.model == model && e.bytes > 0)
            .map(|e| e.bytes.div_ceil(MIB))
    }
}

/// Asks the least recently used loaded models other than `model` to unload until `need` bytes
/// are on their way out; a model asked before counts as on its way.
fn ask_to_unload(models: &mut [Entry], model: &str, mut need: u64) {
    let mut victims: Vec<&mut Entry> = models
        .iter_mut()
        .filter(|e| e.bytes > 0 && e.model != model)
        .collect();
    victims.sort_by_key(|e| e.last_used);
    for v in victims {
        if need == 0 {
            break;
        }
        if !v.unload_asked {
            // A full queue is asked again on the next round.
            if v.queue.try_send(Job::Unload).is_err() {
                continue;
            }
            v.unload_asked = true;
            tracing::info!(model = %v.model, for_model = %model, "unloading to fit the memory budget");
        }
        need = need.saturating_sub(v.bytes);
    }
}
