//! `GET /health`: 200 while the service can serve, 503 with the reason while it cannot (the
//! details only for a caller with the API key, when one is set).

use crate::access::Authenticated;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Extension;
use axum::Json;
use engine::health::Phase;
use serde_json::json;

/// 200 while the service can serve, 503 with the reason while it cannot; with an API key set, a
/// caller without it learns only up or down.
#[utoipa::path(get, path = "/health", tag = "service", responses(
    (status = 200, description = "Serving", body = crate::openapi::Health),
    (status = 503, description = "Loading, unhealthy or failed", body = crate::openapi::Health)))]
pub async fn health(
    State(s): State<AppState>,
    auth: Option<Extension<Authenticated>>,
) -> impl IntoResponse {
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
    if !auth.is_none_or(|Extension(Authenticated(a))| a) {
        // With a key set, callers without it learn only up or down: backend state and failure
        // reasons can name files, devices and processes.
        return (code, Json(json!({ "status": status, "ready": ready })));
    }
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
