//! Images from base64 to the model's input, on the blocking pool and at most one per core at a
//! time: under load requests wait their turn in order instead of time-slicing dozens of decodes
//! (and their buffers) against the device thread.

use crate::EngineError;
use clip::preprocess::{decode_base64, Preprocessor};
use clip::{ModelInfo, PreparedImage, ResizeMode};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub struct ImagePipeline {
    slots: Arc<Semaphore>,
    mode: ResizeMode,
    max_pixels: u64,
    max_decoded_bytes: u64,
}

impl ImagePipeline {
    pub fn new(mode: ResizeMode, max_pixels: u64, max_decoded_bytes: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            slots: Arc::new(Semaphore::new(cores)),
            mode,
            max_pixels,
            max_decoded_bytes,
        }
    }

    /// Decodes and resizes every image to `info`'s input size; the first bad image's error,
    /// tagged with its index when there are several.
    pub async fn prepare(
        &self,
        images: Vec<String>,
        info: &ModelInfo,
    ) -> Result<Vec<PreparedImage>, EngineError> {
        let pre = Arc::new(Preprocessor {
            size: info.image_size,
            mode: self.mode,
            max_pixels: self.max_pixels,
            max_decoded_bytes: self.max_decoded_bytes,
        });
        let n = images.len();
        // A JoinSet aborts its tasks when dropped: when the client leaves, the images still
        // waiting for a decode slot are never decoded.
        let mut tasks = tokio::task::JoinSet::new();
        for (i, b64) in images.into_iter().enumerate() {
            let pre = pre.clone();
            let slots = self.slots.clone();
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let r = tokio::task::spawn_blocking(move || {
                    background_priority();
                    let bytes = decode_base64(&b64)?;
                    drop(b64);
                    pre.prepare(&bytes)
                })
                .await;
                (i, r)
            });
        }
        let mut out: Vec<Option<PreparedImage>> = (0..n).map(|_| None).collect();
        let mut first_err: Option<(usize, EngineError)> = None;
        while let Some(joined) = tasks.join_next().await {
            let (i, r) =
                joined.map_err(|e| EngineError::Internal(format!("preprocess task: {e}")))?;
            match r.map_err(|e| EngineError::Internal(format!("preprocess task: {e}")))? {
                Ok(p) => out[i] = Some(p),
                Err(e) => {
                    let e: EngineError = if n > 1 { e.for_image(i) } else { e }.into();
                    if first_err.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_err = Some((i, e));
                    }
                }
            }
        }
        if let Some((_, e)) = first_err {
            return Err(e);
        }
        let out: Vec<PreparedImage> = out.into_iter().map(|p| p.expect("every image")).collect();
        Ok(out)
    }
}

/// Decoding and tokenizing run below the HTTP workers' priority: under a backlog of either, `/health` and the
/// answers to finished requests still get a core at once. Linux nice values are per thread and
/// raising one needs no privilege; a blocking-pool thread keeps it for the other background work
/// it may do later (tokenizing, cache writes), which is as it should be.
pub(crate) fn background_priority() {
    thread_local! {
        static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    LOWERED.with(|l| {
        if !l.replace(true) {
            // SAFETY: get/setpriority on the calling thread (who = 0) only.
            unsafe {
                let current = libc::getpriority(libc::PRIO_PROCESS, 0);
                libc::setpriority(libc::PRIO_PROCESS, 0, (current + 5).min(19));
            }
        }
    });
}
