//! `POST /v1/embeddings`: OpenAI's embeddings API for texts, so OpenAI client libraries and the
//! tools built on them (vector database importers, LangChain, LlamaIndex) can use the service.
//! Images by the same route follow Infinity's convention (`"modality": "image"`, each input a
//! base64 image or data URI), as well as through `/v1/embed/image`.

use super::Body;
use crate::body::{EmbeddingItem, EmbeddingValue, EmbeddingsBody, EmbeddingsResponse, Usage};
use crate::body::{EmbeddingsInput, EncodingFormat, Modality};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use engine::EngineError;

/// Lists the indices of inputs that were longer than the model's context (and so truncated).
pub const TRUNCATED_HEADER: HeaderName = HeaderName::from_static("x-truncated-inputs");

fn invalid(msg: impl Into<String>) -> ApiError {
    EngineError::Invalid(msg.into()).into()
}

/// OpenAI's base64 form: the little-endian float32 bytes of the vector.
fn base64_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// OpenAI's embeddings API: texts (`input` a string or a list of strings), or images with
/// Infinity's `"modality": "image"`.
#[utoipa::path(post, path = "/v1/embeddings", tag = "openai", request_body = EmbeddingsBody,
    responses((status = 200, description = "OpenAI's list of embeddings", body = EmbeddingsResponse,
        headers(("x-truncated-inputs" = String, description = "Indices of inputs cut to the model's context, comma-separated; absent when none"))), crate::openapi::Errors))]
pub async fn embeddings(
    State(s): State<AppState>,
    body: Body<EmbeddingsBody>,
) -> Result<Response, ApiError> {
    let Json(b) = body?;
    let inputs = match b.input {
        EmbeddingsInput::One(t) => vec![t],
        EmbeddingsInput::Many(v) => v,
        EmbeddingsInput::Tokens(_) | EmbeddingsInput::TokenLists(_) => {
            return Err(invalid(
                "token arrays are not accepted: send the text (CLIP has its own tokenizer)",
            ))
        }
    };
    let engine = s.models.get(Some(&b.model))?;
    if let Some(d) = b.dimensions {
        let have = engine.model_info().await?.embedding_dimension;
        if d != have {
            return Err(invalid(format!(
                "dimensions {d}: model {:?} gives {have}-dimensional embeddings, which cannot be shortened",
                b.model
            )));
        }
    }
    let (embeddings, tokens, truncated) = if b.modality == Modality::Image {
        if inputs
            .iter()
            .any(|t| t.starts_with("http://") || t.starts_with("https://"))
        {
            return Err(invalid(
                "image URLs are not fetched: send base64 or a data:image/...;base64, URI",
            ));
        }
        let n = inputs.len();
        (engine.embed_images(inputs).await?.value, 0, vec![false; n])
    } else {
        let out = engine.embed_texts_counted(inputs).await?.value;
        (out.embeddings, out.tokens.iter().sum(), out.truncated)
    };
    let prompt_tokens: usize = tokens;
    let data = embeddings
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingItem {
            object: "embedding",
            index,
            embedding: match b.encoding_format {
                EncodingFormat::Float => EmbeddingValue::Float(v),
                EncodingFormat::Base64 => EmbeddingValue::Base64(base64_f32(&v)),
            },
        })
        .collect();
    let mut resp = Json(EmbeddingsResponse {
        object: "list",
        data,
        model: b.model,
        usage: Usage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    })
    .into_response();
    let cut: Vec<String> = (truncated.iter().enumerate())
        .filter(|(_, &t)| t)
        .map(|(i, _)| i.to_string())
        .collect();
    if !cut.is_empty() {
        let v = HeaderValue::from_str(&cut.join(",")).expect("digits and commas");
        resp.headers_mut().insert(TRUNCATED_HEADER, v);
    }
    Ok(resp)
}
