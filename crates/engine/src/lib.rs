//! The request path below HTTP: validate -> preprocess images and tokenize texts off the async
//! runtime -> the bounded queue -> the device thread (batching, the backend) -> scoring.

mod device;
mod error;
pub mod health;
mod images;
mod queue;
mod text_cache;
mod texts;
mod validate;

pub use clip::preprocess::PreprocessError;
pub use clip::scoring::LabelScore;
use clip::{scoring, ModelInfo};
use config::Settings;
pub use error::EngineError;
use health::{HealthPublisher, Phase, Snapshot};
use images::ImagePipeline;
use queue::{Embeddings, Job, Queue, Reply, Timing};
use std::sync::Arc;
use std::time::{Duration, Instant};
use text_cache::TextCache;
use tokio::sync::oneshot;

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

/// A result and the device time spent on it.
#[derive(Debug, Clone)]
pub struct Answer<T> {
    pub value: T,
    pub inference_ms: f64,
}

pub struct Engine {
    settings: Settings,
    backend_name: String,
    health: HealthPublisher,
    queue: Queue,
    tokenizer: texts::SharedTokenizer,
    cache: TextCache,
    images: ImagePipeline,
}

impl Engine {
    /// Builds the configured backend and starts the device thread (which warms up if configured).
    pub fn start(settings: Settings) -> Result<Arc<Engine>, EngineError> {
        let backend = backend::build(&settings).map_err(EngineError::from)?;
        Ok(Self::with_backend(settings, backend))
    }

    pub fn with_backend(settings: Settings, backend: Box<dyn backend::Backend>) -> Arc<Engine> {
        let health = HealthPublisher::new();
        if settings.backend.warmup {
            // Not ready until the warm-up inference is through, from the very first /health.
            health.set_phase(Phase::Loading);
        }
        let backend_name = backend.name();
        let cfg = device::WorkerConfig {
            max_batch_size: settings.batching.max_batch_size,
            max_wait: Duration::from_millis(settings.batching.max_wait_ms),
            queue_capacity: settings.batching.queue_capacity,
            warmup: settings.backend.warmup,
            expect_dimension: settings.clip.embedding_dimension,
            expect_image_size: settings.clip.image_size,
        };
        // The device thread ends when the last queue sender (this engine) is dropped.
        let (queue, _detached) = device::spawn(backend, cfg, health.clone());
        Arc::new(Engine {
            images: ImagePipeline::new(settings.clip.resize_mode, settings.limits.max_image_pixels),
            cache: TextCache::new(settings.cache.text_entries),
            tokenizer: texts::tokenizer(),
            settings,
            backend_name,
            health,
            queue,
        })
    }

    pub fn backend_name(&self) -> &str {
        &self.backend_name
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn status(&self) -> Snapshot {
        self.health.snapshot()
    }

    pub fn text_cache_len(&self) -> usize {
        self.cache.len()
    }

    /// Waits until warm-up (or a lazy load) has settled; for start-up and the CLI.
    pub async fn wait_settled(&self) -> Phase {
        let mut rx = self.health.subscribe();
        // With warm-up the phase starts at Loading, so this waits for the warm-up inference.
        let settled = rx.wait_for(|s| s.phase != Phase::Loading).await;
        match settled {
            Ok(s) => s.phase.clone(),
            // The device thread is gone: whatever it last published stands.
            Err(_) => self.health.snapshot().phase,
        }
    }

    pub async fn model_info(&self) -> Result<ModelInfo, EngineError> {
        let snap = self.health.snapshot();
        match (&snap.phase, snap.model) {
            (Phase::Ready, Some(m)) => return Ok(m),
            (Phase::Unhealthy(r), _) => return Err(EngineError::Backend(r.clone())),
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        self.queue.submit(Job::Load { reply: tx })?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    async fn run(
        &self,
        job: impl FnOnce(Reply) -> Job,
    ) -> Result<(Embeddings, Timing), EngineError> {
        let (tx, rx) = oneshot::channel();
        self.queue.submit(job(tx))?;
        rx.await.map_err(|_| EngineError::ShuttingDown)?
    }

    async fn image_embeddings(
        &self,
        images: Vec<String>,
        info: &ModelInfo,
    ) -> Result<(Embeddings, Timing), EngineError> {
        let prepared = self.images.prepare(images, info).await?;
        self.run(|reply| Job::Images {
            items: prepared,
            enqueued: Instant::now(),
            reply,
        })
        .await
    }

    pub async fn embed_images(
        &self,
        images: Vec<String>,
    ) -> Result<Answer<Embeddings>, EngineError> {
        validate::image_count(images.len(), &self.settings.limits)?;
        let info = self.model_info().await?;
        let (value, t) = self.image_embeddings(images, &info).await?;
        Ok(Answer {
            value,
            inference_ms: t.inference_ms,
        })
    }

    pub async fn embed_texts(&self, texts: Vec<String>) -> Result<Answer<Embeddings>, EngineError> {
        validate::texts(&texts, &self.settings.limits)?;
        let o = self.prompt_embeddings(&texts).await?;
        Ok(Answer {
            value: o.value.iter().map(|e| e.to_vec()).collect(),
            inference_ms: o.timing.inference_ms,
        })
    }

    pub async fn classify(
        &self,
        req: ClassifyRequest,
    ) -> Result<Answer<Vec<LabelScore>>, EngineError> {
        let templates = validate::classify(
            &req,
            &self.settings.limits,
            &self.settings.clip.prompt_template,
        )?;
        let info = self.model_info().await?;
        let names: Vec<&String> = req.labels.iter().chain(&req.negative_labels).collect();
        let prompts: Vec<String> = names
            .iter()
            .flat_map(|n| templates.iter().map(move |t| t.replace("{}", n)))
            .collect();
        // Image preprocessing and text encoding overlap; the device thread orders the two jobs.
        let (image, texts) = tokio::join!(
            self.image_embeddings(vec![req.image], &info),
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
        Ok(Answer {
            value: scores,
            inference_ms: img_t.inference_ms + texts.timing.inference_ms,
        })
    }
}
