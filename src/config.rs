//! The one settings struct: loaded from YAML or JSON, defaults applied, validated, rendered.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DEFAULT_YAML_PATH: &str = "/etc/hailo/hailo-clip.yaml";
pub const APP_DIR: &str = "hailo-clip";
pub const JSON_FILE: &str = "hailo-clip.json";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {key}: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("config: {key}: {message}")]
    Invalid { key: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub clip: ClipSettings,
    pub backend: BackendSettings,
    pub limits: LimitSettings,
    pub batching: BatchingSettings,
    pub cache: CacheSettings,
    pub logging: LoggingSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// File holding a bearer token; when set, every route but /health requires it.
    pub api_key_file: Option<PathBuf>,
    /// How long a stop waits for in-flight requests before giving up.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 5000,
            api_key_file: None,
            shutdown_grace_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Straight resize to the input size, as Hailo's model zoo evaluates CLIP.
    Squash,
    /// Resize the short side then crop the centre, as OpenAI CLIP does.
    CenterCrop,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClipSettings {
    pub model: String,
    /// Expected embedding size; checked against the loaded model when set.
    pub embedding_dimension: Option<usize>,
    /// Expected square input size; checked against the loaded model when set.
    pub image_size: Option<u32>,
    pub device: u32,
    pub resize_mode: ResizeMode,
    pub prompt_template: String,
}

impl Default for ClipSettings {
    fn default() -> Self {
        Self {
            model: "clip-resnet-50x4".into(),
            embedding_dimension: None,
            image_size: None,
            device: 0,
            resize_mode: ResizeMode::Squash,
            prompt_template: "a photo of a {}.".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Mock,
    Onnx,
    Hailo,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Mock => "mock",
            BackendKind::Onnx => "onnx",
            BackendKind::Hailo => "hailo",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendSettings {
    /// No default that pretends: the mock must be asked for by name.
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// Text encoder when it differs from the image backend (e.g. hailo images + onnx text).
    pub text: Option<BackendKind>,
    /// Load the model and run one inference before reporting ready.
    pub warmup: bool,
    pub mock: MockSettings,
    pub onnx: OnnxSettings,
    pub hailo: HailoSettings,
}

impl Default for BackendSettings {
    fn default() -> Self {
        Self {
            kind: BackendKind::Hailo,
            text: None,
            warmup: true,
            mock: MockSettings::default(),
            onnx: OnnxSettings::default(),
            hailo: HailoSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MockSettings {
    pub embedding_dimension: usize,
    pub image_size: u32,
    pub max_batch_size: usize,
    pub latency: MockLatency,
    /// Fail every Nth device call (0 = never); exercises fault recovery in tests.
    pub fail_every: u64,
}

impl Default for MockSettings {
    fn default() -> Self {
        Self {
            embedding_dimension: 640,
            image_size: 288,
            max_batch_size: 8,
            latency: MockLatency::default(),
            fail_every: 0,
        }
    }
}

/// Per-batch device time = fixed + per_item * batch. Hailo-10H RN50x4 figures:
/// image_fixed_ms 10.886 + image_per_item_ms 5.014 gives 15.9 ms at batch 1 and 51 ms at batch 8.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MockLatency {
    pub image_fixed_ms: f64,
    pub image_per_item_ms: f64,
    pub text_fixed_ms: f64,
    pub text_per_item_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OnnxSettings {
    /// Default: $XDG_DATA_HOME/hailo-clip/models/<model>/image.onnx
    pub image_model: Option<PathBuf>,
    /// Default: $XDG_DATA_HOME/hailo-clip/models/<model>/text.onnx
    pub text_model: Option<PathBuf>,
    /// libonnxruntime.so; else $ORT_DYLIB_PATH; else the loader's search path.
    pub library_path: Option<PathBuf>,
    /// Intra-op threads; default leaves one core for the HTTP side.
    pub threads: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HailoSettings {
    /// Default: $XDG_DATA_HOME/hailo-clip/models/<model>/image_encoder.hef
    pub image_hef: Option<PathBuf>,
    pub text_hef: Option<PathBuf>,
    /// Token-embedding table and text projection (model zoo .npz) for the text HEF.
    pub text_embeddings: Option<PathBuf>,
    /// Run timeout for one batch on the device.
    pub timeout_ms: Option<u64>,
    /// Files that `hailo-clip models fetch` downloads into the models directory.
    pub downloads: Vec<ModelDownload>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelDownload {
    pub url: String,
    /// File name under the models directory.
    pub file: String,
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    /// Decoded width*height; checked from the header before any pixel is allocated.
    pub max_image_pixels: u64,
    pub max_labels: usize,
    pub max_label_chars: usize,
    pub max_templates: usize,
    pub max_batch_images: usize,
    pub max_batch_texts: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            max_labels: 256,
            max_label_chars: 300,
            max_templates: 32,
            max_batch_images: 32,
            max_batch_texts: 256,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchingSettings {
    /// Upper bound; the backend's own maximum wins when smaller.
    pub max_batch_size: usize,
    /// How long a partial batch may wait for company while the device is under load.
    pub max_wait_ms: u64,
    /// Jobs waiting for the device; beyond this, requests get 429 at once.
    pub queue_capacity: usize,
}

impl Default for BatchingSettings {
    fn default() -> Self {
        Self {
            max_batch_size: 8,
            max_wait_ms: 2,
            queue_capacity: 128,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Text embeddings kept (LRU); 0 disables the cache.
    pub text_entries: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { text_entries: 4096 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSettings {
    /// tracing EnvFilter directive; RUST_LOG wins when set.
    pub level: String,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
}

fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Format::Json,
        _ => Format::Yaml,
    }
}

impl Settings {
    /// Parses config text; errors name the offending key path.
    pub fn from_str_at(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let parse_err = |key: String, message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            key: if key.is_empty() || key == "." {
                "(root)".into()
            } else {
                key
            },
            message,
        };
        let settings: Settings = match format_of(path) {
            Format::Json => {
                let de = &mut serde_json::Deserializer::from_str(text);
                serde_path_to_error::deserialize(de)
                    .map_err(|e| parse_err(e.path().to_string(), e.inner().to_string()))?
            }
            Format::Yaml => {
                if text.trim().is_empty() {
                    Settings::default()
                } else {
                    let de = serde_yaml::Deserializer::from_str(text);
                    serde_path_to_error::deserialize(de)
                        .map_err(|e| parse_err(e.path().to_string(), e.inner().to_string()))?
                }
            }
        };
        settings.validate()?;
        Ok(settings)
    }

    pub fn load_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str_at(&text, path)
    }

    /// `--config`, else the rendered JSON under $XDG_CONFIG_HOME, else the YAML under /etc, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<(Self, Option<PathBuf>), ConfigError> {
        if let Some(p) = explicit {
            return Ok((Self::load_file(p)?, Some(p.to_path_buf())));
        }
        for candidate in default_config_paths() {
            if candidate.exists() {
                return Ok((Self::load_file(&candidate)?, Some(candidate)));
            }
        }
        let s = Settings::default();
        s.validate()?;
        Ok((s, None))
    }

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

    /// JSON with every default spelled out; stable key order so renders are byte-identical.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("settings serialize");
        s.push('\n');
        s
    }

    /// The text encoder in use: the image backend unless configured otherwise.
    pub fn text_backend(&self) -> BackendKind {
        self.backend.text.unwrap_or(self.backend.kind)
    }

    pub fn models_dir(&self) -> PathBuf {
        data_dir().join("models").join(&self.clip.model)
    }
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// $XDG_DATA_HOME/hailo-clip (systemd sets XDG_DATA_HOME=/var/lib), else ~/.local/share/hailo-clip.
pub fn data_dir() -> PathBuf {
    if let Some(d) = env_dir("XDG_DATA_HOME") {
        return d.join(APP_DIR);
    }
    if let Some(h) = env_dir("HOME") {
        return h.join(".local/share").join(APP_DIR);
    }
    PathBuf::from("/var/lib").join(APP_DIR)
}

pub fn default_config_paths() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = env_dir("XDG_CONFIG_HOME") {
        v.push(d.join(APP_DIR).join(JSON_FILE));
    } else if let Some(h) = env_dir("HOME") {
        v.push(h.join(".config").join(APP_DIR).join(JSON_FILE));
    }
    v.push(PathBuf::from(DEFAULT_YAML_PATH));
    v
}

/// YAML in, JSON with defaults out, written via a temp file + rename so readers never see half a file.
pub fn render(input: &Path, output: &Path) -> Result<Settings, ConfigError> {
    let settings = Settings::load_file(input)?;
    let json = settings.to_json();
    write_atomic(output, json.as_bytes()).map_err(|source| ConfigError::Write {
        path: output.to_path_buf(),
        source,
    })?;
    Ok(settings)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_its_path() {
        let e = Settings::from_str_at("clip:\n  modle: x\n", Path::new("a.yaml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("clip"), "{msg}");
        assert!(msg.contains("modle"), "{msg}");
    }

    #[test]
    fn invalid_value_names_its_path() {
        let e = Settings::from_str_at("server:\n  port: 70000\n", Path::new("a.yaml")).unwrap_err();
        assert!(e.to_string().contains("server.port"), "{e}");
        let e = Settings::from_str_at("batching:\n  queue_capacity: 0\n", Path::new("a.yaml"))
            .unwrap_err();
        assert!(e.to_string().contains("batching.queue_capacity"), "{e}");
    }

    #[test]
    fn seed_yaml_parses() {
        let y = "server:\n  host: 0.0.0.0\n  port: 5000\nclip:\n  model: clip-resnet-50x4\n  embedding_dimension: 640\n  device: 0\n  image_size: 288\n";
        let s = Settings::from_str_at(y, Path::new("a.yaml")).unwrap();
        assert_eq!(s.clip.image_size, Some(288));
        assert_eq!(s.backend.kind, BackendKind::Hailo);
    }

    #[test]
    fn json_round_trip_is_stable() {
        let s = Settings::default();
        let j = s.to_json();
        let back = Settings::from_str_at(&j, Path::new("x.json")).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_json(), j);
    }
}
