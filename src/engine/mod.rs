//! The request path below HTTP: decode -> queue -> device thread -> score.

pub mod preprocess;
pub mod scoring;
pub mod status;
pub mod text_cache;
pub mod tokenizer;
pub mod worker;

use crate::backend::{self, BackendError, ModelInfo};
use crate::config::Settings;
use preprocess::Preprocessor;
use scoring::LabelScore;
use status::{Phase, Shared, Snapshot};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use text_cache::{Embedding, TextCache};
use tokio::sync::oneshot;
use worker::{Job, Queue, Timing};

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

#[derive(Debug, Clone)]
pub struct ClassifyRequest {
    pub image: String,
    pub labels: Vec<String>,
    pub top_k: Option<usize>,
    pub prompt_template: Option<String>,
    pub templates: Option<Vec<String>>,
    pub negative_labels: Vec<String>,
    pub threshold: Option<f32>,
}

#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub value: T,
    pub inference_ms: f64,
    pub queue_ms: f64,
}

pub struct Engine {
    settings: Settings,
    backend_name: String,
    shared: Arc<Shared>,
    queue: Queue,
    /// Building the BPE tables takes ~0.1 s: done on a side thread so readiness does not wait for it.
    tokenizer: Arc<LazyLock<tokenizer::ClipTokenizer>>,
    cache: TextCache,
    /// Decodes at once at most one per core: under load requests then wait their turn in order
    /// instead of time-slicing dozens of decodes (and their buffers) against the device thread.
    decode_slots: Arc<tokio::sync::Semaphore>,
}

impl Engine {
    /// Builds the configured backend and starts the device thread (which warms up if configured).
    pub fn start(settings: Settings) -> Result<Arc<Engine>, EngineError> {
        let backend = backend::build(&settings).map_err(EngineError::from)?;
        Ok(Self::with_backend(settings, backend))
    }

    pub fn with_backend(settings: Settings, backend: Box<dyn backend::Backend>) -> Arc<Engine> {
        let shared = Arc::new(Shared::new());
        if settings.backend.warmup {
            // Not ready until the warm-up inference is through, from the very first /health.
            shared.set_phase(Phase::Loading);
        }
        let backend_name = backend.name();
        let cfg = worker::WorkerConfig {
            max_batch_size: settings.batching.max_batch_size,
            max_wait: Duration::from_millis(settings.batching.max_wait_ms),
            queue_capacity: settings.batching.queue_capacity,
            warmup: settings.backend.warmup,
            expect_dimension: settings.clip.embedding_dimension,
            expect_image_size: settings.clip.image_size,
        };
        // The device thread ends when the last queue sender (this engine) is dropped.
        let (queue, _detached) = worker::spawn(backend, cfg, shared.clone());
        let tokenizer = Arc::new(LazyLock::<tokenizer::ClipTokenizer>::new(
            tokenizer::ClipTokenizer::new,
        ));
        let warm = tokenizer.clone();
        std::thread::spawn(move || {
            LazyLock::force(&warm);
        });
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Engine {
            decode_slots: Arc::new(tokio::sync::Semaphore::new(cores)),
            cache: TextCache::new(settings.cache.text_entries),
            settings,
            backend_name,
            shared,
            queue,
            tokenizer,
        })
    }

    pub fn backend_name(&self) -> &str {
        &self.backend_name
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn status(&self) -> Snapshot {
        self.shared.snapshot()
    }

    pub fn text_cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Waits until warm-up (or a lazy load) has settled; for start-up and the CLI.
    pub async fn wait_settled(&self) -> Phase {
        loop {
            let p = self.shared.snapshot().phase;
            // With warm-up the phase starts at Loading, so this waits for the warm-up inference.
            if p != Phase::Loading {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub async fn model_info(&self) -> Result<ModelInfo, EngineError> {
        let snap = self.shared.snapshot();
        match (&snap.phase, snap.model) {
            (Phase::Ready, Some(m)) => return Ok(m),
            (Phase::Unhealthy(r), _) => return Err(EngineError::Backend(r.clone())),
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        self.queue.submit(Job::Load { reply: tx })?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    async fn prepare_images(
        &self,
        images: Vec<String>,
        info: &ModelInfo,
    ) -> Result<Vec<backend::PreparedImage>, EngineError> {
        let pre = Arc::new(Preprocessor {
            size: info.image_size,
            mode: self.settings.clip.resize_mode,
            max_pixels: self.settings.limits.max_image_pixels,
        });
        let tasks: Vec<_> = images
            .into_iter()
            .map(|b64| {
                let pre = pre.clone();
                let slots = self.decode_slots.clone();
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    tokio::task::spawn_blocking(move || {
                        let bytes = preprocess::decode_base64(&b64)?;
                        drop(b64);
                        pre.prepare(&bytes)
                    })
                    .await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (i, t) in tasks.into_iter().enumerate() {
            let prepared = t
                .await
                .and_then(|inner| inner)
                .map_err(|e| EngineError::Internal(format!("preprocess task: {e}")))?;
            out.push(prepared.map_err(|e| with_index(e, i, out.capacity()))?);
        }
        Ok(out)
    }

    async fn run(
        &self,
        job: impl FnOnce(worker::Reply) -> Job,
    ) -> Result<(worker::Embeddings, Timing), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.queue.submit(job(tx))?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    pub async fn embed_images(
        &self,
        images: Vec<String>,
    ) -> Result<Outcome<Vec<Vec<f32>>>, EngineError> {
        let n = images.len();
        if n == 0 {
            return Err(EngineError::Invalid("no image given".into()));
        }
        if n > self.settings.limits.max_batch_images {
            return Err(EngineError::Invalid(format!(
                "{n} images given; the limit is {} (limits.max_batch_images)",
                self.settings.limits.max_batch_images
            )));
        }
        let info = self.model_info().await?;
        let prepared = self.prepare_images(images, &info).await?;
        let (v, t) = self
            .run(|reply| Job::Images {
                items: prepared,
                enqueued: Instant::now(),
                reply,
            })
            .await?;
        Ok(Outcome {
            value: v,
            inference_ms: t.inference_ms,
            queue_ms: t.queue_ms,
        })
    }

    /// Embeddings for exact prompts, from the cache where possible; misses go to the device in one job.
    async fn prompt_embeddings(
        &self,
        prompts: &[String],
    ) -> Result<Outcome<Vec<Embedding>>, EngineError> {
        let model = self.settings.clip.model.as_str();
        let mut out: Vec<Option<Embedding>> =
            prompts.iter().map(|p| self.cache.get(model, p)).collect();
        let mut missing: Vec<usize> = Vec::new();
        for (i, slot) in out.iter().enumerate() {
            // Duplicate prompts in one request are encoded once.
            if slot.is_none() && !missing.iter().any(|&j| prompts[j] == prompts[i]) {
                missing.push(i);
            }
        }
        let mut timing = Timing::default();
        if !missing.is_empty() {
            self.model_info().await?;
            let ids = missing
                .iter()
                .map(|&i| self.tokenizer.tokenize(&prompts[i]))
                .collect();
            let (vecs, t) = self
                .run(|reply| Job::Texts {
                    items: ids,
                    enqueued: Instant::now(),
                    reply,
                })
                .await?;
            timing = t;
            for (&i, v) in missing.iter().zip(vecs) {
                let e: Embedding = v.into();
                self.cache.put(model, &prompts[i], e.clone());
                for (j, slot) in out.iter_mut().enumerate() {
                    if slot.is_none() && prompts[j] == prompts[i] {
                        *slot = Some(e.clone());
                    }
                }
            }
        }
        Ok(Outcome {
            value: out
                .into_iter()
                .map(|e| e.expect("every prompt filled"))
                .collect(),
            inference_ms: timing.inference_ms,
            queue_ms: timing.queue_ms,
        })
    }

    pub async fn embed_texts(
        &self,
        texts: Vec<String>,
    ) -> Result<Outcome<Vec<Vec<f32>>>, EngineError> {
        let n = texts.len();
        if n == 0 {
            return Err(EngineError::Invalid("no text given".into()));
        }
        if n > self.settings.limits.max_batch_texts {
            return Err(EngineError::Invalid(format!(
                "{n} texts given; the limit is {} (limits.max_batch_texts)",
                self.settings.limits.max_batch_texts
            )));
        }
        for t in &texts {
            self.check_text("text", t)?;
        }
        let o = self.prompt_embeddings(&texts).await?;
        Ok(Outcome {
            value: o.value.iter().map(|e| e.to_vec()).collect(),
            inference_ms: o.inference_ms,
            queue_ms: o.queue_ms,
        })
    }

    fn check_text(&self, what: &str, t: &str) -> Result<(), EngineError> {
        let max = self.settings.limits.max_label_chars;
        if t.trim().is_empty() {
            return Err(EngineError::Invalid(format!("{what} must not be empty")));
        }
        if t.chars().count() > max {
            return Err(EngineError::Invalid(format!(
                "{what} is longer than {max} characters (limits.max_label_chars)"
            )));
        }
        Ok(())
    }

    fn validate_classify(&self, req: &ClassifyRequest) -> Result<Vec<String>, EngineError> {
        let l = &self.settings.limits;
        if req.labels.is_empty() {
            return Err(EngineError::Invalid("labels must not be empty".into()));
        }
        let n = req.labels.len() + req.negative_labels.len();
        if n > l.max_labels {
            return Err(EngineError::Invalid(format!(
                "{n} labels given (including negatives); the limit is {} (limits.max_labels)",
                l.max_labels
            )));
        }
        for label in req.labels.iter().chain(&req.negative_labels) {
            self.check_text("label", label)?;
        }
        let mut seen = std::collections::HashSet::new();
        for label in &req.labels {
            if !seen.insert(label.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "label {label:?} is given twice"
                )));
            }
        }
        if req.top_k == Some(0) {
            return Err(EngineError::Invalid("top_k must be at least 1".into()));
        }
        if let Some(t) = req.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(EngineError::Invalid(
                    "threshold must be between 0 and 1".into(),
                ));
            }
        }
        let templates = match (&req.templates, &req.prompt_template) {
            (Some(_), Some(_)) => {
                return Err(EngineError::Invalid(
                    "give either prompt_template or templates, not both".into(),
                ))
            }
            (Some(ts), None) => {
                if ts.is_empty() {
                    return Err(EngineError::Invalid("templates must not be empty".into()));
                }
                if ts.len() > l.max_templates {
                    return Err(EngineError::Invalid(format!(
                        "{} templates given; the limit is {} (limits.max_templates)",
                        ts.len(),
                        l.max_templates
                    )));
                }
                ts.clone()
            }
            (None, Some(t)) => vec![t.clone()],
            (None, None) => vec![self.settings.clip.prompt_template.clone()],
        };
        for t in &templates {
            if !t.contains("{}") {
                return Err(EngineError::Invalid(format!(
                    "template {t:?} must contain {{}} where the label goes"
                )));
            }
        }
        Ok(templates)
    }

    pub async fn classify(
        &self,
        req: ClassifyRequest,
    ) -> Result<Outcome<Vec<LabelScore>>, EngineError> {
        let templates = self.validate_classify(&req)?;
        let info = self.model_info().await?;
        let names: Vec<&String> = req.labels.iter().chain(&req.negative_labels).collect();
        let prompts: Vec<String> = names
            .iter()
            .flat_map(|n| templates.iter().map(move |t| t.replace("{}", n)))
            .collect();
        // Image preprocessing and text encoding overlap; the device thread orders the two jobs.
        let (image, texts) = tokio::join!(
            async {
                let prepared = self.prepare_images(vec![req.image], &info).await?;
                self.run(|reply| Job::Images {
                    items: prepared,
                    enqueued: Instant::now(),
                    reply,
                })
                .await
            },
            self.prompt_embeddings(&prompts)
        );
        let (img_vecs, img_t) = image?;
        let texts = texts?;
        let per = templates.len();
        let class_vec = |i: usize| -> Vec<f32> {
            let parts: Vec<&[f32]> = texts.value[i * per..(i + 1) * per]
                .iter()
                .map(|e| &e[..])
                .collect();
            scoring::ensemble(&parts)
        };
        let labels: Vec<(String, Vec<f32>)> = req
            .labels
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), class_vec(i)))
            .collect();
        let negatives: Vec<Vec<f32>> = (0..req.negative_labels.len())
            .map(|i| class_vec(req.labels.len() + i))
            .collect();
        let scores = scoring::classify(&img_vecs[0], &labels, &negatives, req.top_k, req.threshold);
        Ok(Outcome {
            value: scores,
            inference_ms: img_t.inference_ms + texts.inference_ms,
            queue_ms: img_t.queue_ms.max(texts.queue_ms),
        })
    }
}

fn with_index(e: EngineError, i: usize, n: usize) -> EngineError {
    if n <= 1 {
        return e;
    }
    let tag = |m: String| format!("image {i}: {m}");
    match e {
        EngineError::InvalidBase64(m) => EngineError::InvalidBase64(tag(m)),
        EngineError::UnsupportedImage(m) => EngineError::UnsupportedImage(tag(m)),
        EngineError::InvalidImage(m) => EngineError::InvalidImage(tag(m)),
        EngineError::ImageTooLarge(m) => EngineError::ImageTooLarge(tag(m)),
        other => other,
    }
}
