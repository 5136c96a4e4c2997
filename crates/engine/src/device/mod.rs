//! The device thread: the only code that touches the backend. Jobs reach it through the bounded
//! queue; it forms batches ([`batcher`]), runs them ([`run`]), skips jobs whose client went away,
//! and keeps the backend alive ([`lifecycle`]: warm-up, load, probe, recovery after a fault).

mod batcher;
mod lifecycle;
mod run;

use crate::health::{HealthPublisher, Phase};
use crate::memory::MemoryBudget;
use crate::queue::{Job, Queue};
use backend::Backend;
use clip::ModelInfo;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

pub struct WorkerConfig {
    /// The model's name, for the metrics.
    pub model: String,
    pub max_batch_size: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
    pub warmup: bool,
    /// Unload the model after this long without a job.
    pub idle_unload: Option<Duration>,
    /// Settings-level expectations checked against the loaded model.
    pub expect_dimension: Option<usize>,
    pub expect_image_size: Option<u32>,
    pub memory: MemoryClaim,
}

/// What the model counts against the shared budget while loaded.
pub struct MemoryClaim {
    pub budget: std::sync::Arc<MemoryBudget>,
    /// Evaluated at each load: the model files may have arrived since the start.
    pub bytes: Box<dyn Fn() -> u64 + Send>,
}

pub fn spawn(
    backend: Box<dyn Backend>,
    cfg: WorkerConfig,
    health: HealthPublisher,
) -> (Queue, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(cfg.queue_capacity);
    let model: std::sync::Arc<str> = cfg.model.as_str().into();
    cfg.memory.budget.register(&cfg.model, tx.clone());
    let handle = std::thread::Builder::new()
        .name("device".into())
        .spawn(move || {
            let mut w = Worker {
                backend,
                cfg,
                health,
                rx,
                pending: VecDeque::new(),
                info: None,
                last_batch_jobs: 0,
                retry_at: None,
                retry_delay: Duration::from_millis(500),
            };
            w.run();
        })
        .expect("spawn device thread");
    (Queue { tx, model }, handle)
}

pub(crate) struct Worker {
    backend: Box<dyn Backend>,
    cfg: WorkerConfig,
    health: HealthPublisher,
    rx: Receiver<Job>,
    pending: VecDeque<Job>,
    info: Option<ModelInfo>,
    last_batch_jobs: usize,
    /// Set while unhealthy: when to try rebuilding the backend again.
    retry_at: Option<Instant>,
    retry_delay: Duration,
}

impl Worker {
    fn run(&mut self) {
        if self.cfg.warmup {
            // Ready (and so READY=1 to systemd) only once a real inference has gone through.
            match self.load_model().and_then(|_| self.probe()) {
                Ok(()) => {
                    self.health.set_phase(Phase::Ready);
                    tracing::info!("warm-up done");
                }
                Err(e) => {
                    tracing::error!(error = %e, "warm-up failed");
                    self.info = None;
                    self.health.set_phase(Phase::Failed(e.to_string()));
                }
            }
        }
        loop {
            let job = match self.next_job() {
                Some(j) => j,
                None => break,
            };
            match job {
                Job::Load { reply } => {
                    let _ = reply.send(self.ensure_loaded());
                }
                Job::Unload => {
                    if self.info.is_some() {
                        self.unload("to fit the memory budget");
                    } else {
                        self.cfg.memory.budget.release(&self.cfg.model);
                    }
                }
                job => self.run_batch(job),
            }
        }
        tracing::debug!("device thread stopped");
    }

    /// Blocks for the next job; while unhealthy, wakes up to retry the backend.
    fn next_job(&mut self) -> Option<Job> {
        if let Some(j) = self.pending.pop_front() {
            return Some(j);
        }
        loop {
            match self.retry_at {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(j) => return Some(j),
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = self.recover();
                        }
                        Err(RecvTimeoutError::Disconnected) => return None,
                    }
                }
                None => match (self.cfg.idle_unload, &self.info) {
                    (Some(idle), Some(_)) => match self.rx.recv_timeout(idle) {
                        Ok(j) => return Some(j),
                        Err(RecvTimeoutError::Timeout) => self.unload("after idle time"),
                        Err(RecvTimeoutError::Disconnected) => return None,
                    },
                    _ => return self.rx.recv().ok(),
                },
            }
        }
    }
}
