//! The model catalog (config/catalog.json, built in; `--catalog FILE` replaces it): which models
//! exist, what they need, and where each backend's files come from.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const BUILT_IN: &str = include_str!("../../config/catalog.json");
/// The HailoRT version the project pins (library, driver, firmware move together).
const HAILO_PIN: &str = include_str!("../../nix/hailo-versions.nix");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub about: String,
    pub hailo: HailoSource,
    pub onnx: OnnxSource,
    pub models: Vec<Entry>,
    /// sha256 and size per file URL, where established.
    #[serde(default)]
    pub pins: BTreeMap<String, Pin>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HailoSource {
    /// `{zoo}` and `{hef}` are filled in.
    pub url: String,
    /// HailoRT major.minor -> model zoo version whose HEFs it runs.
    pub zoo_for_hailort: BTreeMap<String, String>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxSource {
    /// `{repo}` and `{path}` are filled in.
    pub url: String,
    pub files: Vec<String>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub weights: String,
    pub embedding_dimension: usize,
    pub image_size: u32,
    pub context_length: usize,
    pub tokenizer: String,
    pub scoring: Scoring,
    pub license: String,
    pub hailo: Option<HailoEntry>,
    pub onnx: Option<OnnxEntry>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// "softmax" (CLIP: softmax over logit_scale * cos) or "sigmoid" (SigLIP).
    pub kind: String,
    pub logit_scale: Option<f32>,
    #[serde(default)]
    pub logit_bias: Option<f32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HailoEntry {
    pub image_hef: String,
    pub text_hef: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnnxEntry {
    pub repo: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hailo,
    Onnx,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hailo => "hailo",
            Kind::Onnx => "onnx",
        }
    }
}

/// One file of a model for one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub url: String,
    /// Relative to the model's directory.
    pub path: String,
    pub pin: Pin,
}

impl Catalog {
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let (text, from) = match path {
            Some(p) => (
                std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
                p.display().to_string(),
            ),
            None => (BUILT_IN.to_string(), "the built-in catalog".to_string()),
        };
        Self::parse(&text).map_err(|e| format!("{from}: {e}"))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let c: Catalog = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for m in &c.models {
            if m.name.is_empty() || m.name.contains(['/', '\\']) || m.name.starts_with('.') {
                return Err(format!("model name {:?} cannot name a directory", m.name));
            }
        }
        Ok(c)
    }

    pub fn get(&self, name: &str) -> Result<&Entry, String> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            format!("unknown model {name:?}; known models: {}", names.join(", "))
        })
    }

    fn pin(&self, url: &str) -> Pin {
        self.pins.get(url).cloned().unwrap_or_default()
    }

    /// The files `models fetch NAME --backend KIND` installs; `zoo` picks the HEF build.
    pub fn files(&self, m: &Entry, kind: Kind, zoo: &str) -> Result<Vec<File>, String> {
        match kind {
            Kind::Onnx => {
                let o = m.onnx.as_ref().ok_or_else(|| {
                    format!(
                        "{} has no ONNX export in the catalog (try --backend hailo)",
                        m.name
                    )
                })?;
                Ok(self
                    .onnx
                    .files
                    .iter()
                    .map(|p| {
                        let url = self
                            .onnx
                            .url
                            .replace("{repo}", &o.repo)
                            .replace("{path}", p);
                        File {
                            pin: self.pin(&url),
                            url,
                            path: p.clone(),
                        }
                    })
                    .collect())
            }
            Kind::Hailo => {
                let h = m.hailo.as_ref().ok_or_else(|| {
                    format!(
                        "{} has no Hailo-10H HEFs in the catalog (try --backend onnx)",
                        m.name
                    )
                })?;
                let hef = |name: &str, path: &str| {
                    let url = self.hailo.url.replace("{zoo}", zoo).replace("{hef}", name);
                    File {
                        pin: self.pin(&url),
                        url,
                        path: path.to_string(),
                    }
                };
                let mut files = vec![hef(&h.image_hef, "image_encoder.hef")];
                // A text HEF whose host half is not CLIP's is of no use here.
                if let Some(t) = h.text_hef.as_ref().filter(|_| m.hailo_text()) {
                    files.push(hef(t, "text_encoder.hef"));
                }
                // Hailo does not publish the text HEF's host tables: they are converted from the
                // ONNX text encoder of the same weights, which (with its tokenizer) also serves
                // `backend.text: onnx`.
                if let Some(o) = &m.onnx {
                    for p in self.onnx.files.iter().filter(|p| !p.starts_with("visual/")) {
                        let url = self
                            .onnx
                            .url
                            .replace("{repo}", &o.repo)
                            .replace("{path}", p);
                        files.push(File {
                            pin: self.pin(&url),
                            url,
                            path: p.clone(),
                        });
                    }
                }
                Ok(files)
            }
        }
    }

    /// The zoo version whose HEFs HailoRT `hailort` (x.y or x.y.z) runs.
    pub fn zoo_for(&self, hailort: &str) -> Result<String, String> {
        let mm: Vec<&str> = hailort
            .trim()
            .trim_start_matches('v')
            .split('.')
            .take(2)
            .collect();
        let key = mm.join(".");
        self.hailo
            .zoo_for_hailort
            .get(&key)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .hailo
                    .zoo_for_hailort
                    .iter()
                    .map(|(k, v)| format!("HailoRT {k} -> zoo v{v}"))
                    .collect();
                format!(
                "no model zoo build is known for HailoRT {hailort} (HEFs must match the runtime's \
                 major.minor); known: {}",
                known.join(", ")
            )
            })
    }
}

impl Entry {
    /// Why the service cannot serve this model, if it cannot. Tokenizers other than CLIP's BPE
    /// run from the model's tokenizer.json (ONNX text encoder); the text HEF's host half is
    /// CLIP's (77 tokens, end-of-text pooling).
    pub fn unsupported(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.context_length == 0 || self.context_length > clip::CONTEXT_LENGTH {
            why.push(format!(
                "{}-token text inputs (at most {})",
                self.context_length,
                clip::CONTEXT_LENGTH
            ));
        }
        match self.scoring.kind.as_str() {
            "softmax" => {}
            "sigmoid"
                if self.scoring.logit_scale.is_none() || self.scoring.logit_bias.is_none() =>
            {
                why.push("sigmoid scoring without an established logit_scale and logit_bias".into())
            }
            "sigmoid" => {}
            other => why.push(format!("scoring {other}")),
        }
        (!why.is_empty()).then(|| format!("not served: {}", why.join("; ")))
    }

    /// Whether the Hailo text HEF path can encode this model's texts.
    pub fn hailo_text(&self) -> bool {
        self.tokenizer == "clip-bpe" && self.context_length == clip::CONTEXT_LENGTH
    }
}

/// The HailoRT version the project pins (`version = "x.y.z";` in nix/hailo-versions.nix).
pub fn pinned_hailort() -> String {
    HAILO_PIN
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("version")?.trim_start().strip_prefix('=')?;
            Some(
                rest.trim()
                    .trim_end_matches(';')
                    .trim_matches('"')
                    .to_string(),
            )
        })
        .unwrap_or_else(|| "5.1.1".into())
}

/// Where `models fetch NAME` installs: the models directory of a `clip.model: NAME` service.
pub fn model_dir(name: &str) -> PathBuf {
    config::data_dir().join("models").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalog_parses_and_resolves() {
        let c = Catalog::load(None).unwrap();
        let rn = c.get("clip-resnet-50x4").unwrap();
        assert_eq!(rn.embedding_dimension, 640);
        assert_eq!(rn.unsupported(), None);
        let zoo = c.zoo_for(&pinned_hailort()).unwrap();
        assert_eq!(zoo, "5.1.1");
        let f = c.files(rn, Kind::Hailo, &zoo).unwrap();
        assert_eq!(
            f[0].url,
            "https://hailo-model-zoo.s3.eu-west-2.amazonaws.com/ModelZoo/Compiled/v5.1.1/hailo10h/clip_resnet_50x4_image_encoder.hef"
        );
        assert_eq!(f[1].path, "text_encoder.hef");
        let o = c.files(rn, Kind::Onnx, &zoo).unwrap();
        assert_eq!(
            o[1].url,
            "https://huggingface.co/immich-app/RN50x4__openai/resolve/main/visual/model.onnx"
        );
        assert_eq!(c.zoo_for("5.2.0").unwrap(), "5.2.0");
        assert!(c.zoo_for("4.23.0").unwrap_err().contains("HailoRT 5.1"));
        assert!(c.get("nope").unwrap_err().contains("clip-vit-b-32"));
        let siglip = c.get("siglip-b-16").unwrap().unsupported().unwrap();
        assert!(siglip.contains("logit_scale"), "{siglip}");
        assert!(!c.get("siglip-b-16").unwrap().hailo_text());
    }
}
