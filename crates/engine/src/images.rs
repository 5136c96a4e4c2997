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
}

impl ImagePipeline {
    pub fn new(mode: ResizeMode, max_pixels: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            slots: Arc::new(Semaphore::new(cores)),
            mode,
            max_pixels,
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
        });
        let n = images.len();
        let tasks: Vec<_> = images
            .into_iter()
            .map(|b64| {
                let pre = pre.clone();
                let slots = self.slots.clone();
                tokio::spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    tokio::task::spawn_blocking(move || {
                        let bytes = decode_base64(&b64)?;
                        drop(b64);
                        pre.prepare(&bytes)
                    })
                    .await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for (i, t) in tasks.into_iter().enumerate() {
            let prepared = t
                .await
                .and_then(|inner| inner)
                .map_err(|e| EngineError::Internal(format!("preprocess task: {e}")))?;
            out.push(prepared.map_err(|e| if n > 1 { e.for_image(i) } else { e })?);
        }
        Ok(out)
    }
}
