//! Deterministic stand-in for the NPU: vectors derived from the input bytes, with an optional
//! latency model so benchmarks and VM tests can behave like the device without owning one.

use crate::{Backend, BackendError};
use clip::{l2_normalize, ModelInfo, PreparedImage, TokenIds};
use config::MockSettings;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct MockBackend {
    model: String,
    cfg: MockSettings,
    calls: u64,
    /// `resident_mb` of touched memory while loaded: the weights a real model would hold.
    weights: Vec<u8>,
}

impl MockBackend {
    pub fn new(model: &str, cfg: MockSettings) -> Self {
        Self {
            model: model.to_string(),
            cfg,
            calls: 0,
            weights: Vec::new(),
        }
    }

    /// Sleeps out what is left of the modelled device time once the vectors are computed, so the
    /// mock's own hashing is not added on top of the figures it models.
    fn device_call(
        &mut self,
        started: Instant,
        fixed_ms: f64,
        per_item_ms: f64,
        n: usize,
    ) -> Result<(), BackendError> {
        self.calls += 1;
        let ms = fixed_ms + per_item_ms * n as f64;
        let left = Duration::from_secs_f64(ms.max(0.0) / 1000.0).saturating_sub(started.elapsed());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
        if self.cfg.fail_every > 0 && self.calls.is_multiple_of(self.cfg.fail_every) {
            return Err(BackendError::Fault(format!(
                "mock device fault injected on call {} (fail_every = {})",
                self.calls, self.cfg.fail_every
            )));
        }
        Ok(())
    }

    fn vector(&self, domain: u64, bytes: &[u8]) -> Vec<f32> {
        let mut state = fnv1a(domain, bytes);
        let mut v: Vec<f32> = (0..self.cfg.embedding_dimension)
            .map(|_| {
                state = splitmix64(state);
                // Uniform in [-1, 1): unit-normalised it is a random direction enough for tests.
                ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
            })
            .collect();
        l2_normalize(&mut v);
        v
    }
}

fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h ^= u64::from_le_bytes(c.try_into().unwrap());
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in chunks.remainder() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Backend for MockBackend {
    fn name(&self) -> String {
        "mock".into()
    }

    fn load(&mut self) -> Result<ModelInfo, BackendError> {
        // Non-zero bytes, so the pages are really written and count in the RSS.
        self.weights = vec![1; (self.cfg.resident_mb as usize) << 20];
        Ok(ModelInfo {
            name: self.model.clone(),
            embedding_dimension: self.cfg.embedding_dimension,
            image_size: (self.cfg.image_size, self.cfg.image_size),
            max_image_batch: self.cfg.max_batch_size,
            max_text_batch: self.cfg.max_batch_size.max(16),
            tokenizer: Default::default(),
            scoring: Default::default(),
        })
    }

    fn encode_images(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError> {
        let side = self.cfg.image_size;
        if let Some(bad) = images.iter().find(|i| i.width != side || i.height != side) {
            return Err(BackendError::Input(format!(
                "image is {}x{}, model takes {side}x{side}",
                bad.width, bad.height
            )));
        }
        let started = Instant::now();
        let out = images.iter().map(|i| self.vector(1, &i.rgb)).collect();
        let l = self.cfg.latency.clone();
        self.device_call(started, l.image_fixed_ms, l.image_per_item_ms, images.len())?;
        Ok(out)
    }

    fn encode_texts(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError> {
        let started = Instant::now();
        let out = texts
            .iter()
            .map(|t| {
                let bytes: Vec<u8> = t.iter().flat_map(|x| x.to_le_bytes()).collect();
                self.vector(2, &bytes)
            })
            .collect();
        let l = self.cfg.latency.clone();
        self.device_call(started, l.text_fixed_ms, l.text_per_item_ms, texts.len())?;
        Ok(out)
    }

    fn unload(&mut self) {
        self.weights = Vec::new();
    }

    fn versions(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("mock".to_string(), env!("CARGO_PKG_VERSION").to_string())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(fill: u8) -> PreparedImage {
        PreparedImage {
            width: 4,
            height: 4,
            rgb: vec![fill; 48],
        }
    }

    #[test]
    fn same_input_same_vector_unit_norm() {
        let cfg = MockSettings {
            embedding_dimension: 16,
            image_size: 4,
            ..Default::default()
        };
        let mut b = MockBackend::new("m", cfg);
        let v = b.encode_images(&[img(1), img(1), img(2)]).unwrap();
        assert_eq!(v[0], v[1]);
        assert_ne!(v[0], v[2]);
        assert_eq!(v[0].len(), 16);
        let n: f32 = v[2].iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-5);
    }

    #[test]
    fn injected_faults() {
        let cfg = MockSettings {
            embedding_dimension: 8,
            image_size: 4,
            fail_every: 2,
            ..Default::default()
        };
        let mut b = MockBackend::new("m", cfg);
        assert!(b.encode_images(&[img(0)]).is_ok());
        assert!(matches!(
            b.encode_images(&[img(0)]),
            Err(BackendError::Fault(_))
        ));
    }
}
