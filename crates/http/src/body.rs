//! Request and response bodies.

use crate::extract::List;
use engine::LabelScore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An 8x8 PNG: the examples of the description are requests that succeed.
pub const EXAMPLE_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbUlEQVR42hXOUREAUQhCUaMYhShEMcqNQhSi7Fs/OQzjzLCDBg83MGToMLPsosXLLSxZug/ECgmLE4iI6oFZI2NzBhNTPzj20OHjDo4cvQf/7Bt41Rf+F+h7YsIGBYfLHyc0D8oWFZfrX05p+QDeqGABtJu0bQAAAABJRU5ErkJggg==";

/// Either one value or a list, under a singular or plural key (`image`/`images`).
// Serialize only for the schema's `untagged`; parsing is by hand below: serde's untagged enums
// buffer the whole value before choosing, which would hold a huge list in memory uncapped.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let list: List<String> =
                    Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(OneOrMany::Many(list.into_vec()))
            }
        }
        d.deserialize_any(V)
    }
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"image": EXAMPLE_PNG, "labels": ["cat", "dog", "car"]}))]
#[serde(deny_unknown_fields)]
pub struct ClassifyBody {
    /// The image: base64 or a `data:image/...;base64,` URI (JPEG, PNG, WebP, GIF, BMP, TIFF),
    /// at most `limits.max_image_pixels` pixels.
    pub image: String,
    /// Required unless `label_set` names a stored set; no label twice; with the negatives at
    /// most `limits.max_labels`, each at most `limits.max_label_chars` characters.
    #[schema(value_type = Option<Vec<String>>)]
    pub labels: Option<List<String>>,
    /// A stored label set (`PUT /v1/label-sets/{name}`) instead of labels and templates.
    pub label_set: Option<String>,
    /// A configured model's name; default: the default model.
    pub model: Option<String>,
    /// Only the best k labels (at least 1).
    pub top_k: Option<usize>,
    /// One template with `{}` where the label goes; default: the configured `clip.prompt_template`.
    pub prompt_template: Option<String>,
    /// Several templates whose embeddings are averaged per label (at most `limits.max_templates`).
    #[schema(value_type = Option<Vec<String>>)]
    pub templates: Option<List<String>>,
    /// Labels that compete for the score but are not returned ("something else").
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub negative_labels: List<String>,
    /// Drop labels scoring below this (0 to 1).
    pub threshold: Option<f32>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"image": EXAMPLE_PNG}))]
#[serde(deny_unknown_fields)]
pub struct EmbedImageBody {
    /// One image (base64 or data URI) or a list; or `images`. At most `limits.max_batch_images`.
    pub image: Option<OneOrMany>,
    #[schema(value_type = Option<Vec<String>>)]
    pub images: Option<List<String>>,
    pub model: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"text": ["a photo of a cat.", "a photo of a dog."]}))]
#[serde(deny_unknown_fields)]
pub struct EmbedTextBody {
    /// One text or a list; or `texts`. At most `limits.max_batch_texts`, each non-empty and at
    /// most `limits.max_text_chars` characters; past the model's 77-token context a text is
    /// truncated (the first 76 tokens, then end-of-text, as open_clip does).
    pub text: Option<OneOrMany>,
    #[schema(value_type = Option<Vec<String>>)]
    pub texts: Option<List<String>>,
    pub model: Option<String>,
}

/// One label's result.
#[derive(ToSchema)]
#[schema(as = LabelScore)]
#[allow(dead_code)]
pub struct LabelScoreSchema {
    label: String,
    /// softmax(100 x cosine) over the labels and negatives: sums to 1 over all of them.
    score: f32,
    /// The raw cosine similarity between image and label embeddings.
    similarity: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// Labels best first.
    #[schema(value_type = Vec<LabelScoreSchema>)]
    pub result: Vec<LabelScore>,
    pub model: String,
    pub backend: String,
    pub inference_time_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbedResult {
    One(Vec<f32>),
    Many(Vec<Vec<f32>>),
}

/// Per text (the shape of `result`): whether it was longer than the model's context and so
/// truncated to it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Truncated {
    One(bool),
    Many(Vec<bool>),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    /// L2-normalised embeddings: one vector for one item, else a list.
    pub result: EmbedResult,
    /// Texts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Truncated>,
    pub dimension: usize,
    pub model: String,
    pub backend: String,
    /// Device time for this request's work, in milliseconds.
    pub inference_time_ms: f64,
}

/// `PUT /v1/label-sets/{name}`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"labels": ["cat", "dog"], "negative_labels": ["something else"]}))]
#[serde(deny_unknown_fields)]
pub struct LabelSetBody {
    #[schema(value_type = Vec<String>)]
    pub labels: List<String>,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub negative_labels: List<String>,
    #[schema(value_type = Option<Vec<String>>)]
    pub templates: Option<List<String>>,
    pub prompt_template: Option<String>,
    pub model: Option<String>,
}

/// `POST /v1/embeddings` (OpenAI's embeddings request).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "clip-resnet-50x4", "input": ["a photo of a cat."]}))]
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
    /// Infinity's extension for images by the same route: `image` makes each input an image
    /// (base64 or a `data:image/...;base64,` URI; URLs are not fetched). Default `text`.
    #[serde(default)]
    pub modality: Modality,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    #[default]
    Text,
    Image,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingsInput {
    One(String),
    Many(Vec<String>),
    /// OpenAI's pre-tokenized input: refused, CLIP has its own tokenizer.
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    /// Little-endian float32 bytes, base64-encoded.
    Base64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<EmbeddingItem>,
    pub model: String,
    pub usage: Usage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddingItem {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

/// Tokens as the model saw them (start and end of text included, at most 77 per text; 0 for
/// images).
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}
