//! Where settings come from: `--config`, the rendered JSON under $XDG_CONFIG_HOME, the YAML
//! under /etc, or the defaults; parse errors name the key path.

use crate::{BackendKind, ConfigError, Settings, APP_DIR, DEFAULT_YAML_PATH, JSON_FILE};

/// File names of the ONNX layout this service exports (tools/export-onnx.py).
pub const ONNX_IMAGE_FILE: &str = "image.onnx";
pub const ONNX_TEXT_FILE: &str = "text.onnx";
/// The same encoders in Immich's layout (immich-app/<model> on Hugging Face).
pub const IMMICH_IMAGE_FILE: &str = "visual/model.onnx";
pub const IMMICH_TEXT_FILE: &str = "textual/model.onnx";
use std::path::{Path, PathBuf};

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
}

impl Settings {
    /// One settings tree per model, each as a single-model config (`models` empty): the
    /// top-level model when `models` is empty, else each entry over the top-level sections.
    pub fn per_model(&self) -> Vec<Settings> {
        if self.models.is_empty() {
            return vec![self.clone()];
        }
        self.models
            .iter()
            .map(|m| {
                let mut s = self.clone();
                s.models = Vec::new();
                s.clip.model = m.name.clone();
                if let Some(b) = &m.backend {
                    s.backend = b.clone();
                }
                if let Some(r) = m.resize_mode {
                    s.clip.resize_mode = r;
                }
                if let Some(t) = &m.prompt_template {
                    s.clip.prompt_template = t.clone();
                }
                if m.embedding_dimension.is_some() {
                    s.clip.embedding_dimension = m.embedding_dimension;
                }
                if m.image_size.is_some() {
                    s.clip.image_size = m.image_size;
                }
                s
            })
            .collect()
    }

    /// Index into [`Settings::per_model`] of the model a request without `model` gets.
    pub fn default_model(&self) -> usize {
        self.models.iter().position(|m| m.default).unwrap_or(0)
    }

    /// The text encoder in use: the image backend unless configured otherwise.
    pub fn text_backend(&self) -> BackendKind {
        self.backend.text.unwrap_or(self.backend.kind)
    }

    pub fn models_dir(&self) -> PathBuf {
        data_dir().join("models").join(&self.clip.model)
    }

    /// `cache.dir`, else $XDG_DATA_HOME/hailo-clip/cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache
            .dir
            .clone()
            .unwrap_or_else(|| data_dir().join("cache"))
    }

    /// `backend.onnx.model_dir`, else the models directory.
    pub fn onnx_model_dir(&self) -> PathBuf {
        self.backend
            .onnx
            .model_dir
            .clone()
            .unwrap_or_else(|| self.models_dir())
    }

    /// `backend.onnx.image_model`, else `image.onnx` in the model directory, else Immich's
    /// `visual/model.onnx` there when that is the layout present.
    pub fn onnx_image_model(&self) -> PathBuf {
        let o = &self.backend.onnx;
        o.image_model.clone().unwrap_or_else(|| {
            onnx_default(&self.onnx_model_dir(), ONNX_IMAGE_FILE, IMMICH_IMAGE_FILE)
        })
    }

    /// `backend.onnx.text_model`, else `text.onnx` in the model directory, else Immich's
    /// `textual/model.onnx` there when that is the layout present.
    pub fn onnx_text_model(&self) -> PathBuf {
        let o = &self.backend.onnx;
        o.text_model.clone().unwrap_or_else(|| {
            onnx_default(&self.onnx_model_dir(), ONNX_TEXT_FILE, IMMICH_TEXT_FILE)
        })
    }
}

/// This service's own file name unless only the Immich one exists (so a missing model is
/// reported under the service's own name).
fn onnx_default(dir: &Path, own: &str, immich: &str) -> PathBuf {
    let own = dir.join(own);
    let immich = dir.join(immich);
    if !own.exists() && immich.exists() {
        immich
    } else {
        own
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
