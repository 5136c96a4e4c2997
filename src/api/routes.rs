//! Handlers: parse the body, hand it to the engine, shape the answer.

use super::error::ApiError;
use super::types::*;
use super::AppState;
use crate::engine::status::Phase;
use crate::engine::ClassifyRequest;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

type Body<T> = Result<Json<T>, JsonRejection>;

pub async fn health(State(s): State<AppState>) -> impl IntoResponse {
    let snap = s.engine.status();
    let backend = s.engine.backend_name().to_string();
    let model = snap
        .model
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_else(|| s.engine.settings().clip.model.clone());
    // A lazy start can serve: the first request loads the model.
    let (ready, status, reason) = match &snap.phase {
        Phase::Ready => (true, "ok", None),
        Phase::NotLoaded => (
            true,
            "ok",
            Some("model loads on the first request".to_string()),
        ),
        Phase::Loading => (false, "loading", Some("model is loading".to_string())),
        Phase::Unhealthy(r) => (false, "unhealthy", Some(r.clone())),
        Phase::Failed(r) => (false, "failed", Some(r.clone())),
    };
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({
        "status": status,
        "ready": ready,
        "backend": backend,
        "model": model,
        "model_loaded": snap.phase == Phase::Ready,
    });
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    (code, Json(body))
}

pub async fn info(State(s): State<AppState>) -> impl IntoResponse {
    let snap = s.engine.status();
    let st = s.engine.settings();
    let mut versions = snap.versions.clone();
    versions.insert("hailo-clip".into(), env!("CARGO_PKG_VERSION").into());
    Json(json!({
        "model": snap.model.as_ref().map(|m| m.name.clone()).unwrap_or_else(|| st.clip.model.clone()),
        "backend": s.engine.backend_name(),
        "state": snap.phase,
        "embedding_dimension": snap.model.as_ref().map(|m| m.embedding_dimension).or(st.clip.embedding_dimension),
        "input_size": snap.model.as_ref().map(|m| [m.image_size.0, m.image_size.1]),
        "max_batch": snap.model.as_ref().map(|m| json!({"image": m.max_image_batch.min(st.batching.max_batch_size), "text": m.max_text_batch})),
        "resize_mode": st.clip.resize_mode,
        "prompt_template": st.clip.prompt_template,
        "limits": st.limits,
        "batching": st.batching,
        "text_cache": {"capacity": st.cache.text_entries, "entries": s.engine.text_cache_len()},
        "versions": versions,
    }))
}

pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

pub async fn classify(
    State(s): State<AppState>,
    body: Body<ClassifyBody>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let Json(b) = body?;
    let out = s
        .engine
        .classify(ClassifyRequest {
            image: b.image,
            labels: b.labels,
            top_k: b.top_k,
            prompt_template: b.prompt_template,
            templates: b.templates,
            negative_labels: b.negative_labels,
            threshold: b.threshold,
        })
        .await?;
    Ok(Json(ClassifyResponse {
        result: out.value,
        model: s.engine.settings().clip.model.clone(),
        backend: s.engine.backend_name().to_string(),
        inference_time_ms: round3(out.inference_ms),
    }))
}

fn one_or_many(
    one: Option<OneOrMany>,
    many: Option<Vec<String>>,
    key: &str,
) -> Result<(Vec<String>, bool), ApiError> {
    match (one, many) {
        (Some(_), Some(_)) => Err(crate::engine::EngineError::Invalid(format!(
            "give either \"{key}\" or \"{key}s\", not both"
        ))
        .into()),
        (Some(OneOrMany::One(s)), None) => Ok((vec![s], true)),
        (Some(m), None) => Ok((m.into_vec(), false)),
        (None, Some(v)) => Ok((v, false)),
        (None, None) => Err(crate::engine::EngineError::Invalid(format!(
            "\"{key}\" or \"{key}s\" is required"
        ))
        .into()),
    }
}

fn embed_response(
    s: &AppState,
    mut v: Vec<Vec<f32>>,
    single: bool,
    ms: f64,
) -> Json<EmbedResponse> {
    let dimension = v.first().map_or(0, |x| x.len());
    let result = if single {
        EmbedResult::One(v.swap_remove(0))
    } else {
        EmbedResult::Many(v)
    };
    Json(EmbedResponse {
        result,
        dimension,
        model: s.engine.settings().clip.model.clone(),
        backend: s.engine.backend_name().to_string(),
        inference_time_ms: round3(ms),
    })
}

pub async fn embed_image(
    State(s): State<AppState>,
    body: Body<EmbedImageBody>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let Json(b) = body?;
    let (images, single) = one_or_many(b.image, b.images, "image")?;
    let out = s.engine.embed_images(images).await?;
    Ok(embed_response(&s, out.value, single, out.inference_ms))
}

pub async fn embed_text(
    State(s): State<AppState>,
    body: Body<EmbedTextBody>,
) -> Result<Json<EmbedResponse>, ApiError> {
    let Json(b) = body?;
    let (texts, single) = one_or_many(b.text, b.texts, "text")?;
    let out = s.engine.embed_texts(texts).await?;
    Ok(embed_response(&s, out.value, single, out.inference_ms))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
