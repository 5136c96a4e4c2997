//! Several models in one service: one engine each (own queue, own device thread, own text
//! cache), picked per request by name.
//!
//! Fairness between models: each model has its own bounded queue and device thread, so a
//! burst for one model fills only that model's queue (429s for it) while requests for another
//! are batched and run by their own thread; at most one model may use the Hailo device (config
//! validation), so every device still has exactly one owner. All models load within one
//! memory budget ([`MemoryBudget`]).

use crate::{Engine, EngineError, MemoryBudget};
use config::Settings;
use std::sync::Arc;

pub struct Models {
    engines: Vec<Arc<Engine>>,
    default: usize,
}

impl Models {
    /// Builds every configured model's engine (each warms up or loads lazily as configured).
    pub fn start(settings: &Settings) -> Result<Arc<Models>, EngineError> {
        let budget = Arc::new(MemoryBudget::new(settings.limits.models_memory_mb));
        let engines = settings
            .per_model()
            .into_iter()
            .map(|s| Engine::start_within(s, budget.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(Models {
            engines,
            default: settings.default_model(),
        }))
    }

    /// Engines built by the caller (tests wrap backends); the first is the default.
    pub fn of(engines: Vec<Arc<Engine>>) -> Arc<Models> {
        assert!(!engines.is_empty(), "at least one model");
        Arc::new(Models {
            engines,
            default: 0,
        })
    }

    pub fn default_engine(&self) -> &Arc<Engine> {
        &self.engines[self.default]
    }

    /// The named model's engine, or the default one for `None`.
    pub fn get(&self, name: Option<&str>) -> Result<&Arc<Engine>, EngineError> {
        match name {
            None => Ok(self.default_engine()),
            Some(n) => self
                .engines
                .iter()
                .find(|e| e.settings().clip.model == n)
                .ok_or_else(|| EngineError::ModelNotFound {
                    name: n.to_string(),
                    known: self.names(),
                }),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.engines
            .iter()
            .map(|e| e.settings().clip.model.clone())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Engine>> {
        self.engines.iter()
    }

    pub fn is_default(&self, e: &Arc<Engine>) -> bool {
        Arc::ptr_eq(e, self.default_engine())
    }
}
