//! Text embeddings keyed by the full prompt (template already applied), for one model, so a
//! repeated label set never reaches the text encoder. With `cache.persist` the entries survive a
//! restart: loaded in the background at start, written out every `cache.flush_secs` and at a
//! clean stop ([`store`]).

mod store;

use lru::LruCache;
use serde::Serialize;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub type Embedding = Arc<[f32]>;

/// What /info says about the cache on disk.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PersistStatus {
    pub path: Option<PathBuf>,
    /// Entries read back at start (None while loading or when nothing was there).
    pub loaded: Option<usize>,
    /// Entries in the last file written.
    pub written: Option<usize>,
    /// The last problem with the file (discarded at load, or a failed write); serving goes on.
    pub error: Option<String>,
}

struct Persist {
    path: PathBuf,
    identity: String,
    status: Mutex<PersistStatus>,
    /// Puts since the last write; the flusher writes only when there are some.
    dirty: AtomicU64,
}

pub struct TextCache {
    model: String,
    inner: Option<Mutex<LruCache<String, Embedding>>>,
    persist: Option<Persist>,
}

impl TextCache {
    pub fn new(model: &str, capacity: usize) -> Self {
        Self {
            model: model.to_string(),
            inner: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
            persist: None,
        }
    }

    /// Keeps the entries in `path` under `model_identity` (see `backend::model_identity`).
    pub fn persisted(mut self, path: PathBuf, model_identity: &str) -> Self {
        if self.inner.is_some() {
            self.persist = Some(Persist {
                status: Mutex::new(PersistStatus {
                    path: Some(path.clone()),
                    ..Default::default()
                }),
                path,
                identity: store::identity(model_identity),
                dirty: AtomicU64::new(0),
            });
        }
        self
    }

    /// The cached embedding of each prompt, under one lock.
    pub fn get_many(&self, model: &str, prompts: &[String]) -> Vec<Option<Embedding>> {
        let hits: Vec<Option<Embedding>> = match &self.inner {
            Some(cache) if model == self.model => {
                let mut c = cache.lock().unwrap();
                prompts.iter().map(|p| c.get(p.as_str()).cloned()).collect()
            }
            _ => vec![None; prompts.len()],
        };
        let found = hits.iter().filter(|h| h.is_some()).count() as u64;
        metrics::counter!("hailo_clip_text_cache_hits_total", "model" => self.model.clone())
            .increment(found);
        metrics::counter!("hailo_clip_text_cache_misses_total", "model" => self.model.clone())
            .increment(prompts.len() as u64 - found);
        hits
    }

    pub fn put(&self, model: &str, prompt: &str, e: Embedding) {
        if model != self.model {
            return;
        }
        if let Some(cache) = &self.inner {
            cache.lock().unwrap().put(prompt.to_string(), e);
            if let Some(p) = &self.persist {
                p.dirty.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |c| c.lock().unwrap().len())
    }

    pub fn persist_status(&self) -> Option<PersistStatus> {
        self.persist
            .as_ref()
            .map(|p| p.status.lock().unwrap().clone())
    }

    /// Reads the file back (blocking; run off the runtime). Entries already cached stay: they
    /// are at least as new.
    pub fn load(&self) {
        let (Some(p), Some(cache)) = (&self.persist, &self.inner) else {
            return;
        };
        if !p.path.exists() {
            p.status.lock().unwrap().loaded = Some(0);
            return;
        }
        match store::read(&p.path, &p.identity) {
            Ok(entries) => {
                let n = entries.len();
                let mut c = cache.lock().unwrap();
                let existing: Vec<String> = c.iter().rev().map(|(k, _)| k.clone()).collect();
                // The file is oldest first, so its most recent entries end up most recent here...
                for (prompt, e) in entries {
                    if !c.contains(&prompt) {
                        c.push(prompt, e);
                    }
                }
                // ...and entries made since the start stay more recent than any of them.
                for k in existing {
                    c.promote(&k);
                }
                drop(c);
                tracing::info!(path = %p.path.display(), entries = n, "text cache loaded");
                p.status.lock().unwrap().loaded = Some(n);
            }
            Err(e) => {
                let msg = format!("{}: {e}; discarded", p.path.display());
                tracing::warn!("text cache {msg}");
                let mut s = p.status.lock().unwrap();
                s.loaded = Some(0);
                s.error = Some(msg);
            }
        }
    }

    /// Writes the cache out when it changed since the last write (blocking; off the runtime).
    pub fn flush(&self) {
        let (Some(p), Some(cache)) = (&self.persist, &self.inner) else {
            return;
        };
        let dirty = p.dirty.swap(0, Ordering::Relaxed);
        if dirty == 0 {
            return;
        }
        // Least recent first; the copy is a list of Arcs, so the lock is held briefly.
        let entries: Vec<(String, Embedding)> = cache
            .lock()
            .unwrap()
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match store::write(&p.path, &p.identity, &entries) {
            Ok(()) => {
                tracing::debug!(path = %p.path.display(), entries = entries.len(), "text cache written");
                let mut s = p.status.lock().unwrap();
                s.written = Some(entries.len());
                if s.error.as_deref().is_some_and(|e| e.starts_with("write")) {
                    s.error = None;
                }
            }
            Err(e) => {
                // Try again at the next flush.
                p.dirty.fetch_add(dirty, Ordering::Relaxed);
                let msg = format!("write {}: {e}", p.path.display());
                tracing::warn!("text cache {msg}; serving goes on without it");
                p.status.lock().unwrap().error = Some(msg);
            }
        }
    }
}
