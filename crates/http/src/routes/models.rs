//! `GET /v1/models` in the list shape OpenAI-compatible clients read, with what this service
//! knows of each model besides.

use crate::AppState;
use axum::extract::State;
use axum::Json;
use engine::health::Phase;
use serde_json::{json, Value};

/// The configured models.
#[utoipa::path(get, path = "/v1/models", operation_id = "list_models", tag = "service",
    responses((status = 200, description = "Models", body = crate::openapi::ModelList), crate::openapi::Errors))]
pub async fn list(State(s): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = s
        .models
        .iter()
        .map(|e| {
            let snap = e.status();
            let st = e.settings();
            let m = snap.model.as_ref();
            json!({
                "id": st.clip.model,
                "object": "model",
                "created": 0,
                "owned_by": "hailo-clip",
                "backend": e.backend_name(),
                "dimension": m.map(|m| m.embedding_dimension).or(st.clip.embedding_dimension),
                "input_size": m.map(|m| [m.image_size.0, m.image_size.1]),
                "loaded": snap.phase == Phase::Ready,
                "memory_mb": e.memory_mb(),
                "default": s.models.is_default(e),
            })
        })
        .collect();
    Json(json!({ "object": "list", "data": data }))
}
