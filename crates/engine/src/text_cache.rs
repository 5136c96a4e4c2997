//! Text embeddings keyed by model and the full prompt (template already applied), so a repeated
//! label set never reaches the text encoder.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

pub type Embedding = Arc<[f32]>;

pub struct TextCache {
    inner: Option<Mutex<LruCache<(String, String), Embedding>>>,
}

impl TextCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    pub fn get(&self, model: &str, prompt: &str) -> Option<Embedding> {
        let cache = self.inner.as_ref()?;
        let hit = cache
            .lock()
            .unwrap()
            .get(&(model.to_string(), prompt.to_string()))
            .cloned();
        if hit.is_some() {
            metrics::counter!("hailo_clip_text_cache_hits_total").increment(1);
        } else {
            metrics::counter!("hailo_clip_text_cache_misses_total").increment(1);
        }
        hit
    }

    pub fn put(&self, model: &str, prompt: &str, e: Embedding) {
        if let Some(cache) = &self.inner {
            cache
                .lock()
                .unwrap()
                .put((model.to_string(), prompt.to_string()), e);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |c| c.lock().unwrap().len())
    }
}
