//! Checks that serde's types cannot express; each error names the key to fix.

use crate::{invalid, BackendKind, ConfigError, Settings};

impl Settings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_one()?;
        let mut seen = std::collections::HashSet::new();
        let mut hailo: Option<usize> = None;
        for (i, (m, s)) in self.models.iter().zip(self.per_model()).enumerate() {
            let key = |k: &str| format!("models[{i}].{k}");
            if !valid_model_name(&m.name) {
                return Err(invalid(
                    &key("name"),
                    format!(
                        "{:?}: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
                        m.name
                    ),
                ));
            }
            if !seen.insert(m.name.as_str()) {
                return Err(invalid(
                    &key("name"),
                    format!("{:?} is configured twice", m.name),
                ));
            }
            let uses_hailo =
                s.backend.kind == BackendKind::Hailo || s.text_backend() == BackendKind::Hailo;
            if uses_hailo {
                if let Some(j) = hailo {
                    return Err(invalid(
                        &key("backend"),
                        format!(
                            "models[{j}] already uses the Hailo device: one process configures one model on it (HailoRT error 74 otherwise)"
                        ),
                    ));
                }
                hailo = Some(i);
            }
            s.validate_one().map_err(|e| match e {
                ConfigError::Invalid { key: k, message } => invalid(&key(&k), message),
                other => other,
            })?;
        }
        if self.models.iter().filter(|m| m.default).count() > 1 {
            return Err(invalid("models", "more than one model has default: true"));
        }
        Ok(())
    }

    fn validate_one(&self) -> Result<(), ConfigError> {
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
        if self.models.is_empty() && !valid_model_name(&self.clip.model) {
            return Err(invalid(
                "clip.model",
                format!("{:?}: 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit (it names a directory)", self.clip.model),
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
            ("max_text_chars", l.max_text_chars as u64),
            ("max_templates", l.max_templates as u64),
            ("max_batch_images", l.max_batch_images as u64),
            ("max_batch_texts", l.max_batch_texts as u64),
            ("max_template_chars", l.max_template_chars as u64),
            ("max_template_slots", l.max_template_slots as u64),
            ("max_prompts", l.max_prompts as u64),
            ("max_decoded_bytes", l.max_decoded_bytes),
            ("max_in_flight", l.max_in_flight as u64),
            ("max_body_bytes_in_flight", l.max_body_bytes_in_flight),
            ("max_connections", l.max_connections as u64),
            ("header_timeout_secs", l.header_timeout_secs),
            ("body_timeout_secs", l.body_timeout_secs),
            ("body_idle_secs", l.body_idle_secs),
            ("request_timeout_secs", l.request_timeout_secs),
            ("client_burst", l.client_burst as u64),
        ] {
            if v == 0 {
                return Err(invalid(&format!("limits.{k}"), "must be at least 1"));
            }
        }
        if (l.max_body_bytes as u64) > l.max_body_bytes_in_flight {
            return Err(invalid(
                "limits.max_body_bytes_in_flight",
                "must be at least limits.max_body_bytes (else no large request could be taken)",
            ));
        }
        if !(l.client_requests_per_second.is_finite() && l.client_requests_per_second >= 0.0) {
            return Err(invalid(
                "limits.client_requests_per_second",
                "must be a finite number >= 0 (0: no limit)",
            ));
        }
        for (i, h) in self.server.allowed_hosts.iter().enumerate() {
            if h.is_empty() || h.contains(['/', ' ', '@']) {
                return Err(invalid(
                    &format!("server.allowed_hosts[{i}]"),
                    format!("{h:?} is not a host name"),
                ));
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

/// Model names are directory names and URL parts: no `/`, no `..`, no leading dot.
pub fn valid_model_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}
