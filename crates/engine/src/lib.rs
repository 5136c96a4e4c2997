//! The request path below HTTP: validate -> preprocess images and tokenize texts off the async
//! runtime -> the bounded queue -> the device thread (batching, the backend) -> scoring.

mod device;
mod error;
pub mod health;
mod images;
pub mod label_sets;
mod memory;
mod models;
mod queue;
mod text_cache;
mod texts;
pub mod validate;

pub use clip::preprocess::{dimensions as image_dimensions, PreprocessError};
pub use clip::scoring::LabelScore;
use clip::{scoring, ModelInfo};
use config::Settings;
pub use error::EngineError;
use health::{HealthPublisher, Phase, Snapshot};
use images::ImagePipeline;
use label_sets::{LabelSet, LabelSetInfo, LabelSetSpec, LabelSets};
pub use memory::MemoryBudget;
pub use models::Models;
use queue::{Embeddings, Job, Queue, Reply, Timing};
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use text_cache::PersistStatus;
use text_cache::TextCache;
use tokio::sync::oneshot;

/// The text cache, and with `cache.persist` its loader (now, in the background) and its flusher
/// (every `cache.flush_secs`, and once more when the engine is dropped).
fn text_cache(
    settings: &Settings,
    identity: &str,
) -> (Arc<TextCache>, Option<std::sync::mpsc::Sender<()>>) {
    let c = &settings.cache;
    let mut cache = TextCache::new(&settings.clip.model, c.text_entries);
    if !(c.persist && c.text_entries > 0) {
        return (Arc::new(cache), None);
    }
    let file = format!("text-{}.bin", file_safe(&settings.clip.model));
    cache = cache.persisted(settings.cache_dir().join(file), identity);
    let cache = Arc::new(cache);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let every = Duration::from_secs(c.flush_secs);
    let worker = cache.clone();
    std::thread::Builder::new()
        .name("text-cache".into())
        .spawn(move || {
            worker.load();
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                worker.flush();
            }
            worker.flush();
        })
        .expect("spawn text-cache thread");
    (cache, Some(tx))
}

/// A model name as a file-name part: anything but `[A-Za-z0-9._-]` becomes `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
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
    /// A stored label set to classify against instead of `labels`.
    pub label_set: Option<String>,
}

/// Class embeddings: one per label (template ensemble applied), then one per negative.
struct Classes {
    labels: Vec<(String, text_cache::Embedding)>,
    negatives: Vec<text_cache::Embedding>,
    timing: Timing,
}

/// Text embeddings, each text's token count as the model saw it (at most the context length,
/// start and end of text included) and whether it was truncated to fit.
#[derive(Debug, Clone)]
pub struct TextEmbeddings {
    pub embeddings: Embeddings,
    pub tokens: Vec<usize>,
    pub truncated: Vec<bool>,
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
    cache: Arc<TextCache>,
    images: ImagePipeline,
    /// Dropped with the engine: the cache's flusher thread then writes a last time and ends.
    _flusher: Option<std::sync::mpsc::Sender<()>>,
    label_sets: LabelSets,
    budget: Arc<MemoryBudget>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The budget holds a sender of this model's queue; without it the device thread ends.
        self.budget.unregister(&self.settings.clip.model);
    }
}

impl Engine {
    /// Builds the configured backend and starts the device thread (which warms up if configured).
    pub fn start(settings: Settings) -> Result<Arc<Engine>, EngineError> {
        let budget = Arc::new(MemoryBudget::new(settings.limits.models_memory_mb));
        Self::start_within(settings, budget)
    }

    /// As [`Engine::start`], loading within a memory budget shared with other models.
    pub fn start_within(
        settings: Settings,
        budget: Arc<MemoryBudget>,
    ) -> Result<Arc<Engine>, EngineError> {
        let backend = backend::build(&settings).map_err(EngineError::from)?;
        Ok(Self::with_backend_within(settings, backend, budget))
    }

    pub fn with_backend(settings: Settings, backend: Box<dyn backend::Backend>) -> Arc<Engine> {
        let budget = Arc::new(MemoryBudget::new(settings.limits.models_memory_mb));
        Self::with_backend_within(settings, backend, budget)
    }

    pub fn with_backend_within(
        settings: Settings,
        backend: Box<dyn backend::Backend>,
        budget: Arc<MemoryBudget>,
    ) -> Arc<Engine> {
        let health = HealthPublisher::new();
        if settings.backend.warmup {
            // Not ready until the warm-up inference is through, from the very first /health.
            health.set_phase(Phase::Loading);
        }
        let backend_name = backend.name();
        let cfg = device::WorkerConfig {
            model: settings.clip.model.clone(),
            max_batch_size: settings.batching.max_batch_size,
            max_wait: Duration::from_millis(settings.batching.max_wait_ms),
            queue_capacity: settings.batching.queue_capacity,
            warmup: settings.backend.warmup,
            idle_unload: settings.backend.idle_unload_secs.map(Duration::from_secs),
            expect_dimension: settings.clip.embedding_dimension,
            expect_image_size: settings.clip.image_size,
            memory: device::MemoryClaim {
                budget: budget.clone(),
                bytes: {
                    let s = settings.clone();
                    Box::new(move || backend::memory_estimate(&s))
                },
            },
        };
        // The device thread ends when the last queue sender (this engine) is dropped.
        let (queue, _detached) = device::spawn(backend, cfg, health.clone());
        let identity = backend::model_identity(&settings);
        let (cache, flusher) = text_cache(&settings, &identity);
        let sets_dir = settings
            .cache
            .persist
            .then(|| settings.cache_dir().join("label-sets"));
        Arc::new(Engine {
            label_sets: LabelSets::new(identity, sets_dir),
            images: ImagePipeline::new(
                settings.clip.resize_mode,
                settings.limits.max_image_pixels,
                settings.limits.max_decoded_bytes,
            ),
            cache,
            _flusher: flusher,
            tokenizer: texts::tokenizer(),
            settings,
            backend_name,
            health,
            queue,
            budget,
        })
    }

    /// MiB this model is counted at against the memory budget while loaded.
    pub fn memory_mb(&self) -> Option<u64> {
        self.budget.held_mb(&self.settings.clip.model)
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

    /// The text cache on disk, when `cache.persist` is on.
    pub fn text_cache_persist(&self) -> Option<PersistStatus> {
        self.cache.persist_status()
    }

    /// Writes what the text cache gained since its last write (blocking: call it off the
    /// runtime); the service does at a clean stop.
    pub fn flush_text_cache(&self) {
        self.cache.flush();
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
        let o = self.embed_texts_counted(texts).await?;
        Ok(Answer {
            value: o.value.embeddings,
            inference_ms: o.inference_ms,
        })
    }

    /// Text embeddings with each text's token count (texts past the context are truncated as
    /// open_clip does: the first 76 tokens, then end-of-text).
    pub async fn embed_texts_counted(
        &self,
        texts: Vec<String>,
    ) -> Result<Answer<TextEmbeddings>, EngineError> {
        validate::texts(&texts, &self.settings.limits)?;
        let o = self.prompt_embeddings(&texts).await?;
        let tokenizer = self.tokenizer.clone();
        let untruncated: Vec<usize> = tokio::task::spawn_blocking(move || {
            texts
                .iter()
                .map(|t| tokenizer.tokenize_counted(t).1)
                .collect()
        })
        .await
        .map_err(|e| EngineError::Internal(format!("tokenizer task: {e}")))?;
        Ok(Answer {
            value: TextEmbeddings {
                embeddings: o.value.iter().map(|e| e.to_vec()).collect(),
                tokens: untruncated
                    .iter()
                    .map(|&n| n.min(clip::CONTEXT_LENGTH))
                    .collect(),
                truncated: untruncated
                    .iter()
                    .map(|&n| n > clip::CONTEXT_LENGTH)
                    .collect(),
            },
            inference_ms: o.timing.inference_ms,
        })
    }

    /// Embeds every label x template prompt (from the cache where it can) and averages each
    /// label's templates into its class embedding.
    async fn classes(
        &self,
        labels: &[String],
        negatives: &[String],
        templates: &[String],
    ) -> Result<Classes, EngineError> {
        let prompts: Vec<String> = labels
            .iter()
            .chain(negatives)
            .flat_map(|n| templates.iter().map(move |t| t.replace("{}", n)))
            .collect();
        let texts = self.prompt_embeddings(&prompts).await?;
        let per = templates.len();
        let class_vec = |i: usize| -> text_cache::Embedding {
            let own = &texts.value[i * per..(i + 1) * per];
            if let [one] = own {
                // One template: the prompt's embedding is the class's (already unit length).
                return one.clone();
            }
            let parts: Vec<&[f32]> = own.iter().map(|e| &e[..]).collect();
            scoring::ensemble(&parts).into()
        };
        Ok(Classes {
            labels: labels
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), class_vec(i)))
                .collect(),
            negatives: (0..negatives.len())
                .map(|i| class_vec(labels.len() + i))
                .collect(),
            timing: texts.timing,
        })
    }

    pub async fn classify(
        &self,
        req: ClassifyRequest,
    ) -> Result<Answer<Vec<LabelScore>>, EngineError> {
        if let Some(name) = &req.label_set {
            validate::classify_with_set(&req)?;
            let set = self.usable_label_set(name)?;
            let info = self.model_info().await?;
            let (img_vecs, img_t) = self.image_embeddings(vec![req.image], &info).await?;
            let scores = scoring::classify_with(
                &info.scoring,
                &img_vecs[0],
                &set.classes,
                &set.negatives,
                req.top_k,
                req.threshold,
            );
            return Ok(Answer {
                value: scores,
                inference_ms: img_t.inference_ms,
            });
        }
        let templates = validate::classify(
            &req,
            &self.settings.limits,
            &self.settings.clip.prompt_template,
        )?;
        let info = self.model_info().await?;
        // Image preprocessing and text encoding overlap; the device thread orders the two jobs.
        let (image, classes) = tokio::join!(
            self.image_embeddings(vec![req.image], &info),
            self.classes(&req.labels, &req.negative_labels, &templates)
        );
        let (img_vecs, img_t) = image?;
        let classes = classes?;
        let scores = scoring::classify_with(
            &info.scoring,
            &img_vecs[0],
            &classes.labels,
            &classes.negatives,
            req.top_k,
            req.threshold,
        );
        Ok(Answer {
            value: scores,
            inference_ms: img_t.inference_ms + classes.timing.inference_ms,
        })
    }

    fn usable_label_set(&self, name: &str) -> Result<Arc<LabelSet>, EngineError> {
        let set = self
            .label_sets
            .get(name)
            .ok_or_else(|| EngineError::LabelSetNotFound(name.to_string()))?;
        if set.identity != self.label_sets.identity() {
            return Err(EngineError::LabelSetStale(format!(
                "label set {name:?} was computed for model {:?} with other model files; PUT it again",
                set.model
            )));
        }
        Ok(set)
    }

    /// Computes and stores a label set (replacing one of the same name).
    pub async fn put_label_set(
        &self,
        name: &str,
        labels: Vec<String>,
        negative_labels: Vec<String>,
        templates: Option<Vec<String>>,
        prompt_template: Option<String>,
    ) -> Result<Answer<LabelSetInfo>, EngineError> {
        if !label_sets::valid_name(name) {
            return Err(EngineError::Invalid(format!(
                "label set name {name:?}: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
            )));
        }
        let probe = ClassifyRequest {
            image: String::new(),
            labels,
            top_k: None,
            prompt_template,
            templates,
            negative_labels,
            threshold: None,
            label_set: None,
        };
        let templates = validate::classify(
            &probe,
            &self.settings.limits,
            &self.settings.clip.prompt_template,
        )?;
        self.model_info().await?;
        let classes = self
            .classes(&probe.labels, &probe.negative_labels, &templates)
            .await?;
        let set = LabelSet {
            name: name.to_string(),
            spec: LabelSetSpec {
                labels: probe.labels,
                negative_labels: probe.negative_labels,
                templates,
            },
            model: self.settings.clip.model.clone(),
            identity: self.label_sets.identity().to_string(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            classes: classes
                .labels
                .into_iter()
                .map(|(n, v)| (n, v.to_vec()))
                .collect(),
            negatives: classes.negatives.iter().map(|v| v.to_vec()).collect(),
        };
        let info = self.label_sets.info(&set);
        if let Some(write) = self.label_sets.put(set) {
            tokio::task::spawn_blocking(write)
                .await
                .map_err(|e| EngineError::Internal(format!("label set write: {e}")))?
                .map_err(EngineError::Internal)?;
        }
        Ok(Answer {
            value: info,
            inference_ms: classes.timing.inference_ms,
        })
    }

    pub fn label_sets(&self) -> Vec<LabelSetInfo> {
        self.label_sets.list()
    }

    /// A stored set's definition and summary.
    pub fn label_set(&self, name: &str) -> Result<(LabelSetSpec, LabelSetInfo), EngineError> {
        let set = self
            .label_sets
            .get(name)
            .ok_or_else(|| EngineError::LabelSetNotFound(name.to_string()))?;
        Ok((set.spec.clone(), self.label_sets.info(&set)))
    }

    pub fn delete_label_set(&self, name: &str) -> Result<(), EngineError> {
        if self.label_sets.delete(name) {
            Ok(())
        } else {
            Err(EngineError::LabelSetNotFound(name.to_string()))
        }
    }
}
