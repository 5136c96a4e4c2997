//! The settings tree: every key, its default and what it means. Unknown keys are refused.

pub use clip::ResizeMode;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Several models in one service; empty: the one model of `clip` and `backend`.
    pub models: Vec<ModelSettings>,
    /// Immich's remote machine-learning API (`POST /predict`, `GET /ping`) for CLIP.
    pub immich: ImmichSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ImmichSettings {
    pub enabled: bool,
    /// Immich's CLIP model name (its `modelName`) -> a configured model. A configured model's
    /// own name is accepted as well. Only map models whose embeddings match the ones Immich
    /// already stored (the same weights), else re-run Immich's smart-search job.
    pub models: std::collections::BTreeMap<String, String>,
    /// Immich's server sends no API key: false serves `/predict` and `/ping` without it even
    /// when `server.api_key_file` is set (they answer CLIP embeddings only).
    pub require_key: bool,
}

impl Default for ImmichSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            models: [
                ("RN50x4__openai", "clip-resnet-50x4"),
                ("ViT-B-32__openai", "clip-vit-b-32"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            require_key: true,
        }
    }
}

/// One model of several. What an entry leaves out it takes from the top-level `clip` and
/// `backend` sections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// Names the model in requests (`model`) and its files' directory, as `clip.model` does.
    pub name: String,
    /// The model a request without `model` gets (else the first entry).
    #[serde(default)]
    pub default: bool,
    /// The whole backend section for this model.
    #[serde(default)]
    pub backend: Option<BackendSettings>,
    #[serde(default)]
    pub resize_mode: Option<ResizeMode>,
    #[serde(default)]
    pub prompt_template: Option<String>,
    #[serde(default)]
    pub embedding_dimension: Option<usize>,
    #[serde(default)]
    pub image_size: Option<u32>,
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
    /// The page to try the service at `/` and the API reference at `/docs`.
    pub web_ui: bool,
    /// `Host` names accepted besides IP literals, `localhost` and this machine's own host name
    /// (a browser on the LAN cannot then be turned against the service by DNS rebinding).
    /// `["*"]` accepts any.
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS from these PEM files (re-read when they change).
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Certificate chain, PEM.
    pub cert_file: PathBuf,
    /// Private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            // Loopback unless the operator chooses to serve the LAN (then with an API key).
            host: "127.0.0.1".into(),
            port: 5000,
            api_key_file: None,
            shutdown_grace_secs: 30,
            web_ui: true,
            allowed_hosts: Vec::new(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClipSettings {
    pub model: String,
    /// Expected embedding size; checked against the loaded model when set.
    pub embedding_dimension: Option<usize>,
    /// Expected square input size; checked against the loaded model when set.
    pub image_size: Option<u32>,
    /// Device index from the original design's YAML. A Hailo-10H host has one NPU, which the
    /// backend opens through HailoRT's default VDevice, so only 0 is accepted.
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
    /// Load the model and run one inference before reporting ready; false loads it on the
    /// first request.
    pub warmup: bool,
    /// Unload the model after this long without a request (it loads again on the next one);
    /// none: keep it loaded until the service stops.
    pub idle_unload_secs: Option<u64>,
    /// Memory the loaded model holds, counted against `limits.models_memory_mb`; none: the size
    /// of its model files (weights must be resident; ONNX Runtime's arenas come on top).
    pub memory_mb: Option<u64>,
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
            idle_unload_secs: None,
            memory_mb: None,
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
    /// MiB the mock allocates (and touches) while loaded, standing in for a model's weights.
    pub resident_mb: u64,
}

impl Default for MockSettings {
    fn default() -> Self {
        Self {
            embedding_dimension: 640,
            image_size: 288,
            max_batch_size: 8,
            latency: MockLatency::default(),
            fail_every: 0,
            resident_mb: 0,
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
    /// Directory of the model's files: image.onnx/text.onnx (+ model.json), or Immich's layout
    /// (config.json, visual/, textual/). Default: $XDG_DATA_HOME/hailo-clip/models/<model>.
    pub model_dir: Option<PathBuf>,
    /// Default: image.onnx in the model directory, else its visual/model.onnx
    pub image_model: Option<PathBuf>,
    /// Default: text.onnx in the model directory, else its textual/model.onnx
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
    /// Open the device in HailoRT's shared VDevice group ("SHARED"), so other processes that
    /// open it in that group (Hailo's hailo-apps pipelines do) use the chip at the same time,
    /// its on-chip scheduler taking turns; false opens it alone, as HailoRT's default does.
    pub share_device: bool,
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
    /// Characters per text to embed: a bound against abuse only, since texts longer than the
    /// model's context are truncated to it as open_clip does.
    pub max_text_chars: usize,
    pub max_templates: usize,
    pub max_batch_images: usize,
    pub max_batch_texts: usize,
    /// Characters per template (before the label goes in).
    pub max_template_chars: usize,
    /// `{}` slots per template.
    pub max_template_slots: usize,
    /// Prompts one request may need embedded: (labels + negatives) x templates.
    pub max_prompts: usize,
    /// Bytes an image may take once decoded (width x height x channels x bytes per sample).
    pub max_decoded_bytes: u64,
    /// Requests on the API routes being read or worked on at once; beyond, 429 before the
    /// body is read.
    pub max_in_flight: usize,
    /// How long a request may wait at the door for one of those slots (its body unread, no CPU
    /// spent) before the 429. A wait holds clients that retry at once (a closed loop) to the
    /// device's pace instead of letting their refusals take the cores; 0 refuses at once.
    pub admission_wait_ms: u64,
    /// Request body bytes being received or held at once (by Content-Length; a body without
    /// one counts as `max_body_bytes`); beyond, 429 before the body is read.
    pub max_body_bytes_in_flight: u64,
    /// Open client connections; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// Time for a request's headers, and for the next request on an idle kept-alive connection.
    pub header_timeout_secs: u64,
    /// Time for a whole request body, and the longest pause between two parts of it (408).
    pub body_timeout_secs: u64,
    pub body_idle_secs: u64,
    /// Time for the whole request, from its headers to the answer (503 `timeout`).
    pub request_timeout_secs: u64,
    /// Requests per second per client address on the API routes (token bucket); 0: no limit.
    pub client_requests_per_second: f64,
    /// Requests a client may send at once above its rate.
    pub client_burst: u32,
    /// MiB all loaded models may hold together (each counts `backend.memory_mb`); loading one
    /// beyond it first unloads the least recently used others. 0: no budget.
    pub models_memory_mb: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_image_pixels: 40_000_000,
            // ImageNet's 1,000 classes fit in one request.
            max_labels: 1000,
            max_label_chars: 300,
            max_text_chars: 16 * 1024,
            max_templates: 32,
            max_batch_images: 32,
            max_batch_texts: 256,
            max_template_chars: 300,
            max_template_slots: 4,
            // ImageNet's 1,000 classes with CLIP's 7-template ensemble fit.
            max_prompts: 8192,
            // A 40 MP RGB photo; 16-bit and float images are refused earlier at their size.
            max_decoded_bytes: 128 << 20,
            max_in_flight: 64,
            admission_wait_ms: 1000,
            max_body_bytes_in_flight: 256 << 20,
            max_connections: 2048,
            header_timeout_secs: 10,
            body_timeout_secs: 60,
            body_idle_secs: 10,
            request_timeout_secs: 300,
            client_requests_per_second: 0.0,
            client_burst: 64,
            // Two thirds of the units' MemoryMax=3G; the rest is for requests in flight.
            models_memory_mb: 2048,
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
    /// Keep text embeddings and label sets on disk across restarts (the packages turn it on).
    pub persist: bool,
    /// Where they are kept; default $XDG_DATA_HOME/hailo-clip/cache.
    pub dir: Option<PathBuf>,
    /// How often new embeddings are written out (and always at a clean stop).
    pub flush_secs: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            text_entries: 4096,
            persist: false,
            dir: None,
            flush_secs: 30,
        }
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
