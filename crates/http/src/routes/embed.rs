//! `POST /v1/embed/image` and `POST /v1/embed/text`: one item or a list.

use super::{round3, Body};
use crate::body::{
    EmbedImageBody, EmbedResponse, EmbedResult, EmbedTextBody, OneOrMany, Truncated,
};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use engine::Engine;

fn one_or_many(
    one: Option<OneOrMany>,
    many: Option<crate::extract::List<String>>,
    key: &str,
) -> Result<(Vec<String>, bool), ApiError> {
    match (one, many) {
        (Some(_), Some(_)) => Err(engine::EngineError::Invalid(format!(
            "give either \"{key}\" or \"{key}s\", not both"
        ))
        .into()),
        (Some(OneOrMany::One(s)), None) => Ok((vec![s], true)),
        (Some(m), None) => Ok((m.into_vec(), false)),
        (None, Some(v)) => Ok((v.into_vec(), false)),
        (None, None) => {
            Err(engine::EngineError::Invalid(format!("\"{key}\" or \"{key}s\" is required")).into())
        }
    }
}

fn embed_response(
    engine: &Engine,
    mut v: Vec<Vec<f32>>,
    truncated: Option<Vec<bool>>,
    single: bool,
    ms: f64,
) -> Json<EmbedResponse> {
    let dimension = v.first().map_or(0, |x| x.len());
    let (result, truncated) = if single {
        (
            EmbedResult::One(v.swap_remove(0)),
            truncated.map(|t| Truncated::One(t[0])),
        )
    } else {
        (EmbedResult::Many(v), truncated.map(Truncated::Many))
    };
    Json(EmbedResponse {
        result,
        truncated,
        dimension,
        model: engine.settings().clip.model.clone(),
        backend: engine.backend_name().to_string(),
        inference_time_ms: round3(ms),
    })
}

/// Image embeddings: one image or a list.
#[utoipa::path(post, path = "/v1/embed/image", tag = "embed", request_body = EmbedImageBody,
    responses((status = 200, description = "L2-normalised embeddings", body = EmbedResponse), crate::openapi::Errors))]
pub async fn embed_image(
    State(s): State<AppState>,
    body: Body<EmbedImageBody>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let Json(b) = body?;
    let engine = s.models.get(b.model.as_deref())?;
    let (images, single) = one_or_many(b.image, b.images, "image")?;
    let out = engine.embed_images(images).await?;
    Ok(embed_response(
        engine,
        out.value,
        None,
        single,
        out.inference_ms,
    ))
}

/// Text embeddings: one text or a list; `truncated` says which were cut to the context.
#[utoipa::path(post, path = "/v1/embed/text", tag = "embed", request_body = EmbedTextBody,
    responses((status = 200, description = "L2-normalised embeddings", body = EmbedResponse), crate::openapi::Errors))]
pub async fn embed_text(
    State(s): State<AppState>,
    body: Body<EmbedTextBody>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let Json(b) = body?;
    let engine = s.models.get(b.model.as_deref())?;
    let (texts, single) = one_or_many(b.text, b.texts, "text")?;
    let out = engine.embed_texts_counted(texts).await?;
    let t = out.value;
    Ok(embed_response(
        engine,
        t.embeddings,
        Some(t.truncated),
        single,
        out.inference_ms,
    ))
}
