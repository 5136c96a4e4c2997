//! One batch through the backend: flatten the jobs' items, encode in chunks of the model's batch
//! size, normalise, and hand each job its own slice of the results.

use super::Worker;
use crate::queue::{reply_err, Job, Kind, Reply, Timing};
use crate::EngineError;
use backend::BackendError;
use clip::{l2_normalize, PreparedImage, TokenIds};
use std::time::Instant;

/// The items of every job in a batch, in job order, and where each job's items are.
#[derive(Default)]
struct Flat {
    images: Vec<PreparedImage>,
    texts: Vec<TokenIds>,
    /// Items per job, in order.
    counts: Vec<usize>,
    replies: Vec<Reply>,
}

impl Flat {
    fn of(jobs: Vec<Job>, model: &str) -> Self {
        let now = Instant::now();
        let mut f = Flat::default();
        for job in jobs {
            let (enqueued, reply) = match job {
                Job::Images {
                    items,
                    enqueued,
                    reply,
                } => {
                    f.counts.push(items.len());
                    f.images.extend(items);
                    (enqueued, reply)
                }
                Job::Texts {
                    items,
                    enqueued,
                    reply,
                } => {
                    f.counts.push(items.len());
                    f.texts.extend(items);
                    (enqueued, reply)
                }
                Job::Load { .. } | Job::Unload => unreachable!("gather takes batch jobs only"),
            };
            metrics::histogram!("hailo_clip_queue_seconds", "model" => model.to_string())
                .record((now - enqueued).as_secs_f64());
            f.replies.push(reply);
        }
        f
    }

    fn len(&self) -> usize {
        self.images.len() + self.texts.len()
    }
}

impl Worker {
    pub(super) fn run_batch(&mut self, first: Job) {
        let kind = first.kind().expect("batch job");
        if let Err(e) = self.ensure_loaded() {
            reply_err(first, e);
            return;
        }
        let jobs = self.gather(first, kind);
        let (live, gone): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| !j.abandoned());
        if !gone.is_empty() {
            metrics::counter!("hailo_clip_jobs_abandoned_total", "model" => self.cfg.model.clone())
                .increment(gone.len() as u64);
            tracing::debug!(count = gone.len(), "skipped jobs whose client went away");
        }
        self.last_batch_jobs = live.len();
        if live.is_empty() {
            return;
        }
        self.cfg.memory.budget.touch(&self.cfg.model);
        let flat = Flat::of(live, &self.cfg.model);
        let started = Instant::now();
        let result = self.encode(kind, &flat);
        let inference_ms = started.elapsed().as_secs_f64() * 1000.0;
        metrics::histogram!("hailo_clip_inference_seconds", "kind" => kind.label(), "model" => self.cfg.model.clone())
            .record(inference_ms / 1000.0);
        match result {
            Ok(out) => answer(flat, out, Timing { inference_ms }),
            Err(e) => {
                if matches!(e, BackendError::Fault(_)) {
                    self.fault(&e);
                }
                let err = EngineError::from(e);
                for r in flat.replies {
                    let _ = r.send(Err(err.clone()));
                }
            }
        }
    }

    /// All items of the batch, at most the model's batch size per backend call.
    fn encode(&mut self, kind: Kind, flat: &Flat) -> Result<Vec<Vec<f32>>, BackendError> {
        let max = self.max_batch(kind);
        let mut chunk_sizes = Vec::new();
        let backend = &mut self.backend;
        let result = match kind {
            Kind::Image => encode_in_chunks(&flat.images, max, &mut chunk_sizes, |c| {
                backend.encode_images(c)
            }),
            Kind::Text => encode_in_chunks(&flat.texts, max, &mut chunk_sizes, |c| {
                backend.encode_texts(c)
            }),
        };
        for n in &chunk_sizes {
            metrics::histogram!("hailo_clip_batch_size", "kind" => kind.label(), "model" => self.cfg.model.clone()).record(*n as f64);
        }
        let out = result?;
        if out.len() != flat.len() {
            return Err(BackendError::Fault(format!(
                "backend returned {} embeddings for {} inputs",
                out.len(),
                flat.len()
            )));
        }
        Ok(out)
    }
}

/// Normalises the batch's embeddings and sends each job its own, in order.
fn answer(flat: Flat, mut out: Vec<Vec<f32>>, timing: Timing) {
    out.iter_mut().for_each(|v| l2_normalize(v));
    let mut rest = out.into_iter();
    for (n, reply) in flat.counts.into_iter().zip(flat.replies) {
        let mine: Vec<Vec<f32>> = rest.by_ref().take(n).collect();
        let _ = reply.send(Ok((mine, timing)));
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
