//! Immich's remote machine-learning API for CLIP, so an Immich server pointed at this service
//! gets its smart-search embeddings from it: `GET /ping` and `POST /predict` (a multipart form:
//! `entries`, the JSON naming task, type and model, plus an `image` file or a `text` field), as
//! `server/src/repositories/machine-learning.repository.ts` sends them and
//! `machine-learning/immich_ml/main.py` answers them.
//!
//! Only the `clip` task is served. Faces and OCR get a 422 `unsupported_task`: Immich's server
//! treats any failed answer as "not here" and tries its next machine-learning URL.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use engine::{Engine, EngineError};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Immich's availability check.
#[utoipa::path(get, path = "/ping", tag = "immich",
    responses((status = 200, description = "`pong`", content_type = "text/plain", body = String), crate::openapi::Errors))]
pub async fn ping() -> &'static str {
    "pong"
}

fn invalid(msg: impl Into<String>) -> ApiError {
    EngineError::Invalid(msg.into()).into()
}

fn multipart_error(e: MultipartError) -> ApiError {
    ApiError::Multipart(e.body_text(), e.status())
}

#[derive(Debug, PartialEq)]
enum Kind {
    Visual,
    Textual,
}

/// The one CLIP entry of an `entries` document: `{"clip": {"visual"|"textual": {"modelName"}}}`.
fn parse_entries(raw: &str) -> Result<(Kind, String), ApiError> {
    let doc: Value = serde_json::from_str(raw)
        .map_err(|e| invalid(format!("entries is not valid JSON: {e}")))?;
    let tasks = doc
        .as_object()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| invalid("entries must be an object naming a task, e.g. {\"clip\": {\"visual\": {\"modelName\": \"ViT-B-32__openai\"}}}"))?;
    let mut found = Vec::new();
    for (task, types) in tasks {
        let types: &Map<String, Value> = types
            .as_object()
            .ok_or_else(|| invalid(format!("entries.{task} must be an object of model types")))?;
        for (kind, entry) in types {
            let name = entry
                .get("modelName")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid(format!("entries.{task}.{kind}.modelName must be a string"))
                })?;
            let kind = match (task.as_str(), kind.as_str()) {
                ("clip", "visual") => Kind::Visual,
                ("clip", "textual") => Kind::Textual,
                _ => {
                    return Err(ApiError::UnsupportedTask(format!(
                        "{task}.{kind} is not served here: this service answers clip.visual and clip.textual only"
                    )))
                }
            };
            found.push((kind, name.to_string()));
        }
    }
    match found.len() {
        1 => Ok(found.pop().expect("one")),
        0 => Err(invalid("entries names no model")),
        _ => Err(invalid(
            "entries names several models: give one of clip.visual or clip.textual",
        )),
    }
}

/// Immich's model name through `immich.models`, else a configured model's own name.
fn resolve<'a>(s: &'a AppState, name: &str) -> Result<&'a Arc<Engine>, ApiError> {
    let map = &s.engine.settings().immich.models;
    let target = map.get(name).map_or(name, String::as_str);
    s.models.get(Some(target)).map_err(|_| {
        let known = s.models.names().join(", ");
        ApiError::ModelNotMapped(match map.get(name) {
            Some(t) => format!(
                "Immich model {name:?} maps to {t:?} (immich.models), which is not configured; configured: {known}"
            ),
            None => format!(
                "Immich model {name:?} is not mapped to a configured model: set immich.models.{name} to one of: {known}"
            ),
        })
    })
}

#[derive(Default)]
struct Form {
    entries: Option<String>,
    image: Option<Vec<u8>>,
    text: Option<String>,
    asset_id: bool,
}

async fn read_form(mut mp: Multipart) -> Result<Form, ApiError> {
    let mut form = Form::default();
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        let twice = || invalid(format!("the {name} part is given twice"));
        match name.as_str() {
            "entries" => {
                let v = field.text().await.map_err(multipart_error)?;
                if form.entries.replace(v).is_some() {
                    return Err(twice());
                }
            }
            "image" => {
                let v = field.bytes().await.map_err(multipart_error)?;
                if form.image.replace(v.to_vec()).is_some() {
                    return Err(twice());
                }
            }
            "text" => {
                let v = field.text().await.map_err(multipart_error)?;
                if form.text.replace(v).is_some() {
                    return Err(twice());
                }
            }
            "assetId" => form.asset_id = true,
            // Immich's service ignores parts it does not know; so does this one.
            _ => {}
        }
    }
    Ok(form)
}

fn embedding_string(v: &[f32]) -> String {
    serde_json::to_string(v).expect("floats serialize")
}

/// Immich's inference request for CLIP: `entries` names `clip.visual` (with an `image` file) or
/// `clip.textual` (with a `text` field) and Immich's model name, mapped by `immich.models`.
#[utoipa::path(post, path = "/predict", tag = "immich",
    request_body(content = crate::openapi::ImmichPredictForm, content_type = "multipart/form-data"),
    responses((status = 200, description = "The embedding as Immich reads it", body = crate::openapi::ImmichClip), crate::openapi::Errors))]
pub async fn predict(
    State(s): State<AppState>,
    headers: HeaderMap,
    mp: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return Err(ApiError::Multipart(
            "expected a multipart/form-data body (entries, plus image or text)".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ));
    }
    let mp = mp.map_err(|r| ApiError::Multipart(r.body_text(), StatusCode::BAD_REQUEST))?;
    let form = read_form(mp).await?;
    let entries = form
        .entries
        .ok_or_else(|| invalid("the entries part is required"))?;
    let (kind, model) = parse_entries(&entries)?;
    let engine = resolve(&s, &model)?;
    match kind {
        Kind::Visual => {
            let Some(image) = form.image else {
                return Err(invalid(if form.asset_id {
                    "clip.visual by assetId needs Immich's shared storage: send the image part"
                } else {
                    "clip.visual needs the image part"
                }));
            };
            let (w, h) = engine::image_dimensions(&image).map_err(EngineError::from)?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(&image);
            drop(image);
            let out = engine.embed_images(vec![b64]).await?;
            Ok(Json(json!({
                "clip": embedding_string(&out.value[0]),
                "imageHeight": h,
                "imageWidth": w,
            })))
        }
        Kind::Textual => {
            let text = form
                .text
                .ok_or_else(|| invalid("clip.textual needs the text part"))?;
            let out = engine.embed_texts(vec![text]).await?;
            Ok(Json(json!({ "clip": embedding_string(&out.value[0]) })))
        }
    }
}
