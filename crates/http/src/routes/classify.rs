//! `POST /v1/classify`: one image against labels.

use super::{round3, Body};
use crate::body::{ClassifyBody, ClassifyResponse};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use engine::{ClassifyRequest, EngineError};

/// Scores one image against labels (or a stored label set).
#[utoipa::path(post, path = "/v1/classify", tag = "classify", request_body = ClassifyBody,
    responses((status = 200, description = "Labels best first", body = ClassifyResponse), crate::openapi::Errors))]
pub async fn classify(
    State(s): State<AppState>,
    body: Body<ClassifyBody>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let Json(b) = body?;
    if b.labels.is_none() && b.label_set.is_none() {
        return Err(
            EngineError::Invalid("\"labels\" (or \"label_set\") is required".into()).into(),
        );
    }
    let engine = s.models.get(b.model.as_deref())?;
    let out = engine
        .classify(ClassifyRequest {
            image: b.image,
            labels: b.labels.map(|l| l.into_vec()).unwrap_or_default(),
            label_set: b.label_set,
            top_k: b.top_k,
            prompt_template: b.prompt_template,
            templates: b.templates.map(|t| t.into_vec()),
            negative_labels: b.negative_labels.into_vec(),
            threshold: b.threshold,
        })
        .await?;
    Ok(Json(ClassifyResponse {
        result: out.value,
        model: engine.settings().clip.model.clone(),
        backend: engine.backend_name().to_string(),
        inference_time_ms: round3(out.inference_ms),
    }))
}
