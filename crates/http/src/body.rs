//! Request and response bodies.

use crate::extract::List;
use engine::LabelScore;
use serde::{Deserialize, Serialize};

/// Either one value or a list, under a singular or plural key (`image`/`images`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(List<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v.into_vec(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyBody {
    pub image: String,
    /// Required unless `label_set` names a stored set.
    pub labels: Option<List<String>>,
    pub label_set: Option<String>,
    /// A configured model's name; default: the default model.
    pub model: Option<String>,
    pub top_k: Option<usize>,
    pub prompt_template: Option<String>,
    pub templates: Option<List<String>>,
    #[serde(default)]
    pub negative_labels: List<String>,
    pub threshold: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedImageBody {
    pub image: Option<OneOrMany>,
    pub images: Option<List<String>>,
    pub model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedTextBody {
    pub text: Option<OneOrMany>,
    pub texts: Option<List<String>>,
    pub model: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClassifyResponse {
    pub result: Vec<LabelScore>,
    pub model: String,
    pub backend: String,
    pub inference_time_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EmbedResult {
    One(Vec<f32>),
    Many(Vec<Vec<f32>>),
}

#[derive(Debug, Serialize)]
pub struct EmbedResponse {
    pub result: EmbedResult,
    pub dimension: usize,
    pub model: String,
    pub backend: String,
    pub inference_time_ms: f64,
}

/// `PUT /v1/label-sets/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSetBody {
    pub labels: List<String>,
    #[serde(default)]
    pub negative_labels: List<String>,
    pub templates: Option<List<String>>,
    pub prompt_template: Option<String>,
    pub model: Option<String>,
}
