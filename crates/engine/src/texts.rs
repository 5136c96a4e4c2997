//! Text embeddings for exact prompts: from the cache where possible; the misses are tokenized on
//! the blocking pool (BPE is CPU work, and the first call builds the tokenizer's tables) and go
//! to the device in one job.

use crate::queue::{Job, Timing};
use crate::text_cache::{Embedding, TextCache};
use crate::{Engine, EngineError};
use clip::tokenizer::{ClipTokenizer, TextTokenizer};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// Building the BPE tables takes ~0.1 s: started on a side thread at start-up so readiness does
/// not wait for it, and shared with the blocking tasks that tokenize.
pub type SharedTokenizer = Arc<LazyLock<ClipTokenizer>>;

pub fn tokenizer() -> SharedTokenizer {
    let t: SharedTokenizer = Arc::new(LazyLock::new(ClipTokenizer::new));
    let warm = t.clone();
    std::thread::spawn(move || {
        LazyLock::force(&warm);
    });
    t
}

/// Prompts per device job: a few model batches, so one job holds the device for a fraction
/// of a second on a Hailo-10H text encoder.
const TEXT_CHUNK: usize = 32;

pub struct PromptEmbeddings {
    pub value: Vec<Embedding>,
    pub timing: Timing,
}

impl Engine {
    pub(crate) async fn prompt_embeddings(
        &self,
        prompts: &[String],
    ) -> Result<PromptEmbeddings, EngineError> {
        let model = self.settings.clip.model.as_str();
        let cache: &TextCache = &self.cache;
        let mut out: Vec<Option<Embedding>> = cache.get_many(model, prompts);
        // Duplicate prompts in one request are encoded once: each missing prompt's first index,
        // and every index that wants it (a map, so 8,192 prompts cost 8,192 steps, not 67 million).
        let mut missing: Vec<usize> = Vec::new();
        let mut wanted: std::collections::HashMap<&str, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, slot) in out.iter().enumerate() {
            if slot.is_none() {
                let at = wanted.entry(prompts[i].as_str()).or_default();
                if at.is_empty() {
                    missing.push(i);
                }
                at.push(i);
            }
        }
        let mut timing = Timing::default();
        if !missing.is_empty() {
            let info = self.model_info().await?;
            // Large requests go to the device a chunk at a time: other requests' jobs queue
            // between the chunks (so a burst of prompts cannot hold the device for minutes), a
            // client that leaves stops the work at the next chunk (this future is dropped), and
            // what was done is cached, so a retry after a 429 resumes where it stopped.
            let chunk = TEXT_CHUNK.max(info.max_text_batch);
            for part in missing.chunks(chunk) {
                let texts: Vec<String> = part.iter().map(|&i| prompts[i].clone()).collect();
                let clip_bpe = self.tokenizer.clone();
                let tokenizer = info.tokenizer.clone();
                // The model's own tokenizer when it is not CLIP's (from its tokenizer.json).
                let ids: Vec<clip::TokenIds> = tokio::task::spawn_blocking(move || {
                    crate::images::background_priority();
                    match &tokenizer {
                        TextTokenizer::ClipBpe => {
                            Ok(texts.iter().map(|t| clip_bpe.tokenize(t)).collect())
                        }
                        TextTokenizer::HuggingFace(hf) => texts
                            .iter()
                            .map(|t| hf.tokenize(t))
                            .collect::<Result<Vec<_>, String>>(),
                    }
                })
                .await
                .map_err(|e| EngineError::Internal(format!("tokenizer task: {e}")))?
                .map_err(EngineError::Internal)?;
                let (vecs, t) = self
                    .run(|reply| Job::Texts {
                        items: ids,
                        enqueued: Instant::now(),
                        reply,
                    })
                    .await?;
                timing.inference_ms += t.inference_ms;
                for (&i, v) in part.iter().zip(vecs) {
                    let e: Embedding = v.into();
                    cache.put(model, &prompts[i], e.clone());
                    for &j in &wanted[prompts[i].as_str()] {
                        out[j] = Some(e.clone());
                    }
                }
            }
        }
        Ok(PromptEmbeddings {
            value: out
                .into_iter()
                .map(|e| e.expect("every prompt filled"))
                .collect(),
            timing,
        })
    }
}
