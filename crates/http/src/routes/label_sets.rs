//! `/v1/label-sets`: named labels + templates whose class embeddings are computed once.

use super::{round3, Body};
use crate::body::LabelSetBody;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// Computes and stores a label set (replacing one of the same name).
#[utoipa::path(put, path = "/v1/label-sets/{name}", operation_id = "put_label_set", tag = "label-sets", request_body = LabelSetBody,
    params(("name" = String, Path, example = "animals", description = "1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit")),
    responses((status = 200, description = "Stored", body = crate::openapi::LabelSetStored), crate::openapi::Errors))]
pub async fn put(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Body<LabelSetBody>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body?;
    let out = s
        .engine
        .put_label_set(
            &name,
            b.labels.into_vec(),
            b.negative_labels.into_vec(),
            b.templates.map(|t| t.into_vec()),
            b.prompt_template,
        )
        .await?;
    Ok(Json(json!({
        "result": out.value,
        "model": s.engine.settings().clip.model,
        "backend": s.engine.backend_name(),
        "inference_time_ms": round3(out.inference_ms),
    })))
}

/// Every model's sets (each names its model).
#[utoipa::path(get, path = "/v1/label-sets", operation_id = "list_label_sets", tag = "label-sets",
    responses((status = 200, description = "Every model's sets", body = crate::openapi::LabelSetList), crate::openapi::Errors))]
pub async fn list(State(s): State<AppState>) -> Json<Value> {
    let sets: Vec<_> = s.models.iter().flat_map(|e| e.label_sets()).collect();
    Json(json!({ "label_sets": sets }))
}

/// `?model=NAME` picks another model's set (default: the default model's).
#[derive(serde::Deserialize)]
pub struct ModelQuery {
    model: Option<String>,
}

/// A stored set's definition.
#[utoipa::path(get, path = "/v1/label-sets/{name}", operation_id = "get_label_set", tag = "label-sets",
    params(("name" = String, Path, example = "animals"), ("model" = Option<String>, Query, description = "Another model's set (default: the default model's)")),
    responses((status = 200, description = "The set", body = crate::openapi::LabelSetDetail), crate::openapi::Errors))]
pub async fn get(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(model): Query<ModelQuery>,
) -> Result<Json<Value>, ApiError> {
    let engine = s.models.get(model.model.as_deref())?;
    let (spec, info) = engine.label_set(&name)?;
    Ok(Json(json!({
        "name": info.name,
        "model": info.model,
        "stale": info.stale,
        "created": info.created,
        "labels": spec.labels,
        "negative_labels": spec.negative_labels,
        "templates": spec.templates,
    })))
}

/// Deletes a stored set.
#[utoipa::path(delete, path = "/v1/label-sets/{name}", operation_id = "delete_label_set", tag = "label-sets",
    params(("name" = String, Path, example = "animals"), ("model" = Option<String>, Query, description = "Another model's set (default: the default model's)")),
    responses((status = 204, description = "Deleted"), crate::openapi::Errors))]
pub async fn delete(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(model): Query<ModelQuery>,
) -> Result<StatusCode, ApiError> {
    s.models
        .get(model.model.as_deref())?
        .delete_label_set(&name)?;
    Ok(StatusCode::NO_CONTENT)
}
