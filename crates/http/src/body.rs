//! Request and response bodies.

use engine::LabelScore;
use serde::{Deserialize, Serialize};

/// Either one value or a list, under a singular or plural key (`image`/`images`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyBody {
    pub image: String,
    /// Required unless `label_set` names a stored set.
    pub labels: Option<Vec<String>>,
    pub label_set: Option<String>,
    /// A configured model's name; default: the default model.
    pub model: Option<String>,
    pub top_k: Option<usize>,
    pub prompt_template: Option<String>,
    pub templates: Option<Vec<String>>,
    #[serde(default)]
    pub negative_labels: Vec<String>,
    pub threshold: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedImageBody {
    pub image: Option<OneOrMany>,
    pub images: Option<Vec<String>>,
    pub model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedTextBody {
    pub text: Option<OneOrMany>,
    pub texts: Option<Vec<String>>,
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

/// Per text (the shape of `result`): whether it was longer than the model's context and so
/// truncated to it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Truncated {
    One(bool),
    Many(Vec<bool>),
}

#[derive(Debug, Serialize)]
pub struct EmbedResponse {
    pub result: EmbedResult,
    /// Texts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    pub dimension: usize,
    pub model: String,
    pub backend: String,
    pub inference_time_ms: f64,
}

/// `PUT /v1/label-sets/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelSetBody {
    pub labels: Vec<String>,
    #[serde(default)]
    pub negative_labels: Vec<String>,
    pub templates: Option<Vec<String>>,
    pub prompt_template: Option<String>,
    pub model: Option<String>,
}

/// `POST /v1/embeddings` (OpenAI's embeddings request).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsBody {
    pub input: EmbeddingsInput,
    /// A configured model's name (`GET /v1/models`).
    pub model: String,
    #[serde(default)]
    pub encoding_format: EncodingFormat,
    /// Accepted only when equal to the model's dimension: CLIP embeddings cannot be shortened.
    pub dimensions: Option<usize>,
    /// Accepted and ignored (OpenAI's end-user id).
    pub user: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingsInput {
    One(String),
    Many(Vec<String>),
    /// OpenAI's pre-tokenized input: refused, CLIP has its own tokenizer.
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    /// Little-endian float32 bytes, base64-encoded.
    Base64,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<EmbeddingItem>,
    pub model: String,
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingItem {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

/// Tokens as the model saw them (start and end of text included, at most 77 per text).
#[derive(Debug, Serialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}
