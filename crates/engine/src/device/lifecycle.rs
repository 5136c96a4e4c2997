//! The backend's life on the device thread: load and check the model, prove it with a probe
//! inference, mark it unhealthy on a fault and rebuild it with backoff.

use super::Worker;
use crate::health::Phase;
use crate::EngineError;
use backend::BackendError;
use clip::{ModelInfo, PreparedImage};
use std::time::{Duration, Instant};

impl Worker {
    /// Frees the model (idle time, or room for another model); the next job loads it.
    pub(super) fn unload(&mut self, why: &str) {
        self.backend.unload();
        self.info = None;
        self.cfg.memory.budget.release(&self.cfg.model);
        self.health.set_phase(Phase::NotLoaded);
        metrics::counter!("hailo_clip_model_unloads_total", "model" => self.cfg.model.clone())
            .increment(1);
        tracing::info!(backend = %self.backend.name(), "model unloaded {why}");
    }

    pub(super) fn ensure_loaded(&mut self) -> Result<ModelInfo, EngineError> {
        if let Some(i) = &self.info {
            return Ok(i.clone());
        }
        if self.retry_at.is_some() {
            return self.recover();
        }
        let info = self.load_model()?;
        self.health.set_phase(Phase::Ready);
        Ok(info)
    }

    /// Loads and checks the model; leaves the phase at Loading on success for the caller to settle.
    pub(super) fn load_model(&mut self) -> Result<ModelInfo, EngineError> {
        // Room first: a model that must wait for others to unload is not loading yet.
        let bytes = (self.cfg.memory.bytes)();
        self.cfg.memory.budget.claim(&self.cfg.model, bytes)?;
        self.health.set_phase(Phase::Loading);
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
                metrics::counter!("hailo_clip_model_loads_total", "model" => self.cfg.model.clone()).increment(1);
                self.health.set_model(info.clone(), self.backend.versions());
                self.info = Some(info.clone());
                Ok(info)
            }
            Err(e) => {
                self.cfg.memory.budget.release(&self.cfg.model);
                tracing::error!(error = %e, "model load failed");
                self.health.set_phase(Phase::Failed(e.to_string()));
                Err(e)
            }
        }
    }

    /// Settings that disagree with the model are the operator's error, said plainly.
    pub(super) fn check(&self, info: ModelInfo) -> Result<ModelInfo, EngineError> {
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
    pub(super) fn probe(&mut self) -> Result<(), EngineError> {
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
        self.backend
            .encode_texts(&[info.tokenizer.probe()])
            .map_err(EngineError::from)?;
        Ok(())
    }

    /// Rebuilds the backend after a fault; health returns only when a probe inference succeeds.
    pub(super) fn recover(&mut self) -> Result<ModelInfo, EngineError> {
        self.info = None;
        self.retry_at = None;
        tracing::warn!("rebuilding backend after device fault");
        let result = self.load_model().and_then(|i| self.probe().map(|_| i));
        match &result {
            Ok(_) => {
                tracing::info!("backend recovered");
                self.retry_delay = Duration::from_millis(500);
                self.health.set_phase(Phase::Ready);
            }
            Err(e) => {
                self.info = None;
                self.retry_at = Some(Instant::now() + self.retry_delay);
                self.retry_delay = (self.retry_delay * 2).min(Duration::from_secs(30));
                self.health
                    .set_phase(Phase::Unhealthy(format!("recovery failed: {e}")));
            }
        }
        result
    }

    pub(super) fn fault(&mut self, e: &BackendError) {
        tracing::error!(error = %e, "device fault; backend marked unhealthy");
        metrics::counter!("hailo_clip_device_faults_total", "model" => self.cfg.model.clone())
            .increment(1);
        self.info = None;
        self.cfg.memory.budget.release(&self.cfg.model);
        self.health.set_phase(Phase::Unhealthy(e.to_string()));
        self.retry_at = Some(Instant::now());
    }
}
