//! The device thread: the only code that touches the backend. Requests reach it through a bounded
//! queue; it forms batches (in this one place), skips jobs whose client went away, and rebuilds
//! the backend after a device fault.

use super::status::{Phase, Shared};
use super::EngineError;
use crate::backend::{l2_normalize, Backend, BackendError, ModelInfo, PreparedImage, TokenIds};
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What a caller gets back with its embeddings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub queue_ms: f64,
    /// Device time of the batch(es) this job rode in.
    pub inference_ms: f64,
    pub batch_size: usize,
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
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Image,
    Text,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Text => "text",
        }
    }
}

impl Job {
    fn kind(&self) -> Option<Kind> {
        match self {
            Job::Images { .. } => Some(Kind::Image),
            Job::Texts { .. } => Some(Kind::Text),
            Job::Load { .. } => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Job::Images { items, .. } => items.len(),
            Job::Texts { items, .. } => items.len(),
            Job::Load { .. } => 0,
        }
    }

    fn abandoned(&self) -> bool {
        match self {
            Job::Images { reply, .. } | Job::Texts { reply, .. } => reply.is_closed(),
            Job::Load { reply } => reply.is_closed(),
        }
    }
}

/// The sending half, held by the engine.
#[derive(Clone)]
pub struct Queue {
    tx: SyncSender<Job>,
}

impl Queue {
    /// Never blocks: a full queue is the client's signal to back off (429).
    pub fn submit(&self, job: Job) -> Result<(), EngineError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                metrics::counter!("hailo_clip_queue_rejected_total").increment(1);
                Err(EngineError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => Err(EngineError::ShuttingDown),
        }
    }
}

pub struct WorkerConfig {
    pub max_batch_size: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
    pub warmup: bool,
    /// Settings-level expectations checked against the loaded model.
    pub expect_dimension: Option<usize>,
    pub expect_image_size: Option<u32>,
}

pub fn spawn(
    backend: Box<dyn Backend>,
    cfg: WorkerConfig,
    shared: Arc<Shared>,
) -> (Queue, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(cfg.queue_capacity);
    let handle = std::thread::Builder::new()
        .name("device".into())
        .spawn(move || {
            let mut w = Worker {
                backend,
                cfg,
                shared,
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
    (Queue { tx }, handle)
}

struct Worker {
    backend: Box<dyn Backend>,
    cfg: WorkerConfig,
    shared: Arc<Shared>,
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
                    self.shared.set_phase(Phase::Ready);
                    tracing::info!("warm-up done");
                }
                Err(e) => {
                    tracing::error!(error = %e, "warm-up failed");
                    self.info = None;
                    self.shared.set_phase(Phase::Failed(e.to_string()));
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
                None => return self.rx.recv().ok(),
            }
        }
    }

    fn ensure_loaded(&mut self) -> Result<ModelInfo, EngineError> {
        if let Some(i) = &self.info {
            return Ok(i.clone());
        }
        if self.retry_at.is_some() {
            return self.recover();
        }
        let info = self.load_model()?;
        self.shared.set_phase(Phase::Ready);
        Ok(info)
    }

    /// Loads and checks the model; leaves the phase at Loading on success for the caller to settle.
    fn load_model(&mut self) -> Result<ModelInfo, EngineError> {
        self.shared.set_phase(Phase::Loading);
        let started = Instant::now();
        match self
            .backend
            .load()
            .map_err(EngineError::from)
            .and_then(|i| self.check(i))
        {
            Ok(info) => {
                tracing::info!(
                    backend = %self.backend.name(),
                    model = %info.name,
                    dimension = info.embedding_dimension,
                    ms = started.elapsed().as_millis() as u64,
                    "model loaded"
                );
                self.shared.set_model(info.clone(), self.backend.versions());
                self.info = Some(info.clone());
                Ok(info)
            }
            Err(e) => {
                tracing::error!(error = %e, "model load failed");
                self.shared.set_phase(Phase::Failed(e.to_string()));
                Err(e)
            }
        }
    }

    /// Settings that disagree with the model are the operator's error, said plainly.
    fn check(&self, info: ModelInfo) -> Result<ModelInfo, EngineError> {
        if let Some(d) = self.cfg.expect_dimension {
            if d != info.embedding_dimension {
                return Err(EngineError::NotReady(format!(
                    "config clip.embedding_dimension is {d} but model {} gives {}",
                    info.name, info.embedding_dimension
                )));
            }
        }
        if let Some(s) = self.cfg.expect_image_size {
            if (s, s) != info.image_size {
                return Err(EngineError::NotReady(format!(
                    "config clip.image_size is {s} but model {} takes {}x{}",
                    info.name, info.image_size.0, info.image_size.1
                )));
            }
        }
        Ok(info)
    }

    /// One inference of each kind: proves the device works end to end.
    fn probe(&mut self) -> Result<(), EngineError> {
        let info = self
            .info
            .clone()
            .ok_or_else(|| EngineError::Internal("probe before load".into()))?;
        let (w, h) = info.image_size;
        let img = PreparedImage {
            width: w,
            height: h,
            rgb: vec![0; (w * h * 3) as usize],
        };
        self.backend
            .encode_images(&[img])
            .map_err(EngineError::from)?;
        let mut ids = [0u32; crate::backend::CONTEXT_LENGTH];
        ids[0] = 49406;
        ids[1] = 49407;
        self.backend
            .encode_texts(&[ids])
            .map_err(EngineError::from)?;
        Ok(())
    }

    /// Rebuilds the backend after a fault; health returns only when a probe inference succeeds.
    fn recover(&mut self) -> Result<ModelInfo, EngineError> {
        self.info = None;
        self.retry_at = None;
        tracing::warn!("rebuilding backend after device fault");
        let result = self.load_model().and_then(|i| self.probe().map(|_| i));
        match &result {
            Ok(_) => {
                tracing::info!("backend recovered");
                self.retry_delay = Duration::from_millis(500);
                self.shared.set_phase(Phase::Ready);
            }
            Err(e) => {
                self.info = None;
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(Duration::from_secs(30));
                self.shared
                    .set_phase(Phase::Unhealthy(format!("recovery failed: {e}")));
            }
        }
        result
    }

    fn fault(&mut self, e: &BackendError) {
        tracing::error!(error = %e, "device fault; backend marked unhealthy");
        metrics::counter!("hailo_clip_device_faults_total").increment(1);
        self.info = None;
        self.shared.set_phase(Phase::Unhealthy(e.to_string()));
        self.retry_at = Some(Instant::now());
    }

    fn max_batch(&self, kind: Kind) -> usize {
        let model_max = self.info.as_ref().map_or(1, |i| match kind {
            Kind::Image => i.max_image_batch,
            Kind::Text => i.max_text_batch,
        });
        match kind {
            Kind::Image => model_max.min(self.cfg.max_batch_size).max(1),
            Kind::Text => model_max.max(1),
        }
    }

    /// Gathers jobs of the first job's kind until the batch is full. A partial batch waits up to
    /// `max_wait` for company only under load; an idle device runs a lone request at once.
    fn gather(&mut self, first: Job, kind: Kind) -> Vec<Job> {
        let max = self.max_batch(kind);
        let mut count = first.len();
        let mut jobs = vec![first];
        let mut others = VecDeque::new();
        while count < max {
            match self.pending.pop_front() {
                Some(j) if j.kind() == Some(kind) => {
                    count += j.len();
                    jobs.push(j);
                }
                Some(j) => others.push_back(j),
                None => break,
            }
        }
        let mut deadline: Option<Instant> = None;
        while count < max {
            let next = match self.rx.try_recv() {
                Ok(j) => Some(j),
                Err(_) => {
                    let under_load = self.last_batch_jobs > 1 || jobs.len() > 1;
                    if !under_load || self.cfg.max_wait.is_zero() {
                        break;
                    }
                    let d = *deadline.get_or_insert_with(|| Instant::now() + self.cfg.max_wait);
                    match self
                        .rx
                        .recv_timeout(d.saturating_duration_since(Instant::now()))
                    {
                        Ok(j) => Some(j),
                        Err(_) => break,
                    }
                }
            };
            if let Some(j) = next {
                if j.kind() == Some(kind) {
                    count += j.len();
                    jobs.push(j);
                } else {
                    others.push_back(j);
                }
            }
        }
        // Jobs of the other kind keep their order ahead of anything still in the channel.
        while let Some(j) = others.pop_back() {
            self.pending.push_front(j);
        }
        jobs
    }

    fn run_batch(&mut self, first: Job) {
        let kind = first.kind().expect("batch job");
        if let Err(e) = self.ensure_loaded() {
            reply_err(first, e);
            return;
        }
        let jobs = self.gather(first, kind);
        let (live, gone): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| !j.abandoned());
        if !gone.is_empty() {
            metrics::counter!("hailo_clip_jobs_abandoned_total").increment(gone.len() as u64);
            tracing::debug!(count = gone.len(), "skipped jobs whose client went away");
        }
        self.last_batch_jobs = live.len();
        if live.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut images = Vec::new();
        let mut texts = Vec::new();
        let mut spans = Vec::with_capacity(live.len());
        let mut replies = Vec::with_capacity(live.len());
        for job in live {
            match job {
                Job::Images {
                    items,
                    enqueued,
                    reply,
                } => {
                    spans.push((items.len(), enqueued));
                    images.extend(items);
                    replies.push(reply);
                }
                Job::Texts {
                    items,
                    enqueued,
                    reply,
                } => {
                    spans.push((items.len(), enqueued));
                    texts.extend(items);
                    replies.push(reply);
                }
                Job::Load { .. } => unreachable!("gather takes batch jobs only"),
            }
        }
        for (_, enq) in &spans {
            metrics::histogram!("hailo_clip_queue_seconds").record((now - *enq).as_secs_f64());
        }
        let max = self.max_batch(kind);
        let total = images.len() + texts.len();
        let started = Instant::now();
        let mut chunk_sizes = Vec::new();
        let backend = &mut self.backend;
        let result = match kind {
            Kind::Image => {
                encode_in_chunks(&images, max, &mut chunk_sizes, |c| backend.encode_images(c))
            }
            Kind::Text => {
                encode_in_chunks(&texts, max, &mut chunk_sizes, |c| backend.encode_texts(c))
            }
        };
        let inference_ms = started.elapsed().as_secs_f64() * 1000.0;
        metrics::histogram!("hailo_clip_inference_seconds", "kind" => kind.label())
            .record(inference_ms / 1000.0);
        for n in &chunk_sizes {
            metrics::histogram!("hailo_clip_batch_size", "kind" => kind.label()).record(*n as f64);
        }
        let checked = result.and_then(|out| {
            if out.len() == total {
                Ok(out)
            } else {
                Err(BackendError::Fault(format!(
                    "backend returned {} embeddings for {total} inputs",
                    out.len()
                )))
            }
        });
        let mut out = match checked {
            Ok(out) => out,
            Err(e) => {
                if matches!(e, BackendError::Fault(_)) {
                    self.fault(&e);
                }
                let err = EngineError::from(e);
                for r in replies {
                    let _ = r.send(Err(err.clone()));
                }
                return;
            }
        };
        out.iter_mut().for_each(|v| l2_normalize(v));
        let batch_size = chunk_sizes.iter().copied().max().unwrap_or(0);
        let mut rest = out.into_iter();
        for ((n, enq), reply) in spans.into_iter().zip(replies) {
            let mine: Vec<Vec<f32>> = rest.by_ref().take(n).collect();
            let timing = Timing {
                queue_ms: (now - enq).as_secs_f64() * 1000.0,
                inference_ms,
                batch_size,
            };
            let _ = reply.send(Ok((mine, timing)));
        }
    }
}

/// Runs `items` through `encode` at most `max` at a time, stopping at the first error.
fn encode_in_chunks<T>(
    items: &[T],
    max: usize,
    sizes: &mut Vec<usize>,
    mut encode: impl FnMut(&[T]) -> Result<Vec<Vec<f32>>, BackendError>,
) -> Result<Vec<Vec<f32>>, BackendError> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(max) {
        sizes.push(chunk.len());
        out.extend(encode(chunk)?);
    }
    Ok(out)
}

fn reply_err(job: Job, e: EngineError) {
    match job {
        Job::Images { reply, .. } | Job::Texts { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Load { reply } => {
            let _ = reply.send(Err(e));
        }
    }
}
