//! `GET /info` (model, backend, limits, versions) and `GET /metrics` (Prometheus).

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// The default model, backend, limits, batching, text cache and versions.
#[utoipa::path(get, path = "/info", tag = "service",
    responses((status = 200, description = "About the service", body = crate::openapi::Info), crate::openapi::Errors))]
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
        "text_cache": {"capacity": st.cache.text_entries, "entries": s.engine.text_cache_len(), "persist": s.engine.text_cache_persist()},
        "label_sets": s.engine.label_sets().len(),
        "versions": versions,
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String), crate::openapi::Errors))]
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
