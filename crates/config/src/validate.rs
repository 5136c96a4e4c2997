//! Checks that serde's types cannot express; each error names the key to fix.

use crate::{invalid, BackendKind, ConfigError, Settings};

impl Settings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }
        if self.server.host.parse::<std::net::IpAddr>().is_err() && self.server.host != "localhost"
        {
            return Err(invalid(
                "server.host",
                format!("{:?} is not an IP address", self.server.host),
            ));
        }
        if !self.clip.prompt_template.contains("{}") {
            return Err(invalid(
                "clip.prompt_template",
                "must contain {} for the label",
            ));
        }
        if self.clip.device != 0 {
            return Err(invalid(
                "clip.device",
                format!(
                    "device {} is not available: the service opens the one Hailo device of the host (index 0)",
                    self.clip.device
                ),
            ));
        }
        if self.clip.embedding_dimension == Some(0) {
            return Err(invalid("clip.embedding_dimension", "must be positive"));
        }
        if self.clip.image_size == Some(0) {
            return Err(invalid("clip.image_size", "must be positive"));
        }
        let m = &self.backend.mock;
        if m.embedding_dimension == 0 {
            return Err(invalid(
                "backend.mock.embedding_dimension",
                "must be positive",
            ));
        }
        if m.image_size == 0 {
            return Err(invalid("backend.mock.image_size", "must be positive"));
        }
        if m.max_batch_size == 0 {
            return Err(invalid("backend.mock.max_batch_size", "must be at least 1"));
        }
        for (k, v) in [
            ("image_fixed_ms", m.latency.image_fixed_ms),
            ("image_per_item_ms", m.latency.image_per_item_ms),
            ("text_fixed_ms", m.latency.text_fixed_ms),
            ("text_per_item_ms", m.latency.text_per_item_ms),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(
                    &format!("backend.mock.latency.{k}"),
                    "must be a finite number >= 0",
                ));
            }
        }
        if self.backend.onnx.threads == Some(0) {
            return Err(invalid("backend.onnx.threads", "must be at least 1"));
        }
        if self.backend.text == Some(BackendKind::Mock) && self.backend.kind != BackendKind::Mock {
            return Err(invalid(
                "backend.text",
                "mock text embeddings cannot be paired with a real image backend",
            ));
        }
        for (i, d) in self.backend.hailo.downloads.iter().enumerate() {
            if d.file.contains('/') || d.file.is_empty() || d.file.starts_with('.') {
                return Err(invalid(
                    &format!("backend.hailo.downloads[{i}].file"),
                    "must be a plain file name",
                ));
            }
            if let Some(h) = &d.sha256 {
                if h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(invalid(
                        &format!("backend.hailo.downloads[{i}].sha256"),
                        "must be 64 hex digits",
                    ));
                }
            }
        }
        let l = &self.limits;
        for (k, v) in [
            ("max_body_bytes", l.max_body_bytes as u64),
            ("max_image_pixels", l.max_image_pixels),
            ("max_labels", l.max_labels as u64),
            ("max_label_chars", l.max_label_chars as u64),
            ("max_templates", l.max_templates as u64),
            ("max_batch_images", l.max_batch_images as u64),
            ("max_batch_texts", l.max_batch_texts as u64),
        ] {
            if v == 0 {
                return Err(invalid(&format!("limits.{k}"), "must be at least 1"));
            }
        }
        if self.cache.persist && self.cache.flush_secs == 0 {
            return Err(invalid("cache.flush_secs", "must be at least 1"));
        }
        if self.batching.max_batch_size == 0 {
            return Err(invalid("batching.max_batch_size", "must be at least 1"));
        }
        if self.batching.queue_capacity == 0 {
            return Err(invalid("batching.queue_capacity", "must be at least 1"));
        }
        if self.batching.max_wait_ms > 1000 {
            return Err(invalid("batching.max_wait_ms", "must be at most 1000"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.level).is_err() {
            return Err(invalid(
                "logging.level",
                format!("{:?} is not a tracing filter", self.logging.level),
            ));
        }
        Ok(())
    }
}
