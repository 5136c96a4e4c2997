//! The one settings struct: loaded from YAML or JSON, defaults applied, validated, rendered.

mod load;
mod render;
mod schema;
mod validate;

pub use load::{
    data_dir, default_config_paths, IMMICH_IMAGE_FILE, IMMICH_TEXT_FILE, ONNX_IMAGE_FILE,
    ONNX_TEXT_FILE,
};
pub use render::{render, write_atomic};
pub use schema::*;
use std::path::PathBuf;
pub use validate::valid_model_name;

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

pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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

    /// The NixOS module reads the defaults from this file instead of restating them.
    #[test]
    fn defaults_file_is_the_rendered_defaults() {
        let file = include_str!("../../../config/defaults.json");
        assert_eq!(
            file,
            Settings::default().to_json(),
            "config/defaults.json is stale: regenerate it with \
             `printf '' > /tmp/e.yaml && hailo-clip render-config --input /tmp/e.yaml --output config/defaults.json`"
        );
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
