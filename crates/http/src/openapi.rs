//! The OpenAPI 3.1 description at `GET /openapi.json`, generated from the request and response
//! types and the handlers' `#[utoipa::path]` attributes; the answers that routes build as JSON
//! values are described by the schemas below (tests/contract checks every answer against them).

use crate::error::{ErrorBody, ErrorType};
use crate::routes;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use utoipa::{IntoResponses, OpenApi, ToSchema};

/// The error answers any route may give; `error_type` says which (see `ErrorType`).
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// `malformed_json`, `invalid_base64`, `invalid_image`, `invalid_multipart`.
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// `unauthorized`: `server.api_key_file` is set and the bearer token is missing or wrong.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// `not_found`, `model_not_found`, `label_set_not_found`.
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// `body_timeout`: the body did not arrive within `limits.body_timeout_secs` or paused
    /// longer than `limits.body_idle_secs`.
    #[response(status = 408)]
    RequestTimeout(#[to_schema] ErrorBody),
    /// `label_set_stale`: the set was computed for other model files; PUT it again.
    #[response(status = 409)]
    Conflict(#[to_schema] ErrorBody),
    /// `body_too_large` (`limits.max_body_bytes`), `image_too_large` (`limits.max_image_pixels`,
    /// `limits.max_decoded_bytes`).
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// `unsupported_media_type` (wrong Content-Type), `unsupported_image` (not a supported format).
    #[response(status = 415)]
    UnsupportedMediaType(#[to_schema] ErrorBody),
    /// `host_not_allowed`: the `Host` header names a host not served here (`server.allowed_hosts`).
    #[response(status = 421)]
    MisdirectedRequest(#[to_schema] ErrorBody),
    /// `invalid_request`: a field is missing, of the wrong type or past a limit (the message
    /// names the setting); `unsupported_task` (Immich's faces and OCR).
    #[response(status = 422)]
    Unprocessable(#[to_schema] ErrorBody),
    /// `overloaded`: the service is full (`limits.max_in_flight`, `limits.max_body_bytes_in_flight`,
    /// refused before the body is read; or the device queue, `batching.queue_capacity`);
    /// `rate_limited`: this client is over `limits.client_requests_per_second`. Retry after the
    /// `Retry-After` seconds.
    #[response(status = 429)]
    Overloaded(#[to_schema] ErrorBody),
    /// `internal`: a bug; the message says where.
    #[response(status = 500)]
    Internal(#[to_schema] ErrorBody),
    /// `not_ready`, `backend_unavailable`, `shutting_down`, `timeout` (`limits.request_timeout_secs`),
    /// `insufficient_memory` (the model does not fit `limits.models_memory_mb` beside the loaded
    /// ones, which did not unload in time); retry after `Retry-After`.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// `GET /health`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    /// `ok`, `loading`, `unhealthy` or `failed`.
    status: String,
    /// Whether requests can be served (a lazy start can: the first request loads the model).
    ready: bool,
    backend: String,
    model: String,
    model_loaded: bool,
    /// Why it is not `ok`, or that the model loads on the first request.
    reason: Option<String>,
}

/// `GET /info`: the default model, backend, limits and versions.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Info {
    model: String,
    backend: String,
    /// The device thread's phase.
    #[schema(value_type = Object)]
    state: serde_json::Value,
    embedding_dimension: Option<usize>,
    /// `[width, height]` once the model is loaded.
    input_size: Option<Vec<u32>>,
    #[schema(value_type = Option<Object>)]
    max_batch: Option<serde_json::Value>,
    resize_mode: String,
    prompt_template: String,
    /// The `limits` settings: what one request may ask.
    #[schema(value_type = Object)]
    limits: serde_json::Value,
    #[schema(value_type = Object)]
    batching: serde_json::Value,
    #[schema(value_type = Object)]
    text_cache: serde_json::Value,
    /// Stored label sets of the default model.
    label_sets: usize,
    versions: BTreeMap<String, String>,
}

/// `GET /v1/models`, in the list shape OpenAI-compatible clients read.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ModelList {
    /// `list`.
    object: String,
    data: Vec<ModelEntry>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ModelEntry {
    /// The name requests give as `model`.
    id: String,
    /// `model`.
    object: String,
    created: u64,
    owned_by: String,
    backend: String,
    dimension: Option<usize>,
    input_size: Option<Vec<u32>>,
    loaded: bool,
    /// MiB the loaded model counts against `limits.models_memory_mb` (null while not loaded).
    memory_mb: Option<u64>,
    /// The model of requests that name none.
    default: bool,
}

/// A stored label set, in summary.
#[derive(ToSchema)]
#[schema(as = LabelSetInfo)]
#[allow(dead_code)]
pub struct LabelSetInfoSchema {
    name: String,
    model: String,
    labels: usize,
    negative_labels: usize,
    templates: usize,
    /// Unix seconds.
    created: u64,
    /// Computed for other model files: must be PUT again before use.
    stale: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LabelSetList {
    label_sets: Vec<LabelSetInfoSchema>,
}

/// A stored label set's definition.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LabelSetDetail {
    name: String,
    model: String,
    stale: bool,
    created: u64,
    labels: Vec<String>,
    negative_labels: Vec<String>,
    templates: Vec<String>,
}

/// The stored set's summary and the device time its embeddings took.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LabelSetStored {
    result: LabelSetInfoSchema,
    model: String,
    backend: String,
    inference_time_ms: f64,
}

/// Immich's `/predict` form, as its server's `getFormData` builds it.
#[derive(ToSchema)]
#[schema(example = json!({"entries": "{\"clip\": {\"textual\": {\"modelName\": \"RN50x4__openai\", \"options\": {}}}}", "text": "a photo of a cat."}))]
#[allow(dead_code)]
pub struct ImmichPredictForm {
    /// JSON naming the task, type and model:
    /// `{"clip": {"visual": {"modelName": "RN50x4__openai"}}}` or
    /// `{"clip": {"textual": {"modelName": "RN50x4__openai", "options": {}}}}`.
    #[schema(example = r#"{"clip": {"visual": {"modelName": "RN50x4__openai"}}}"#)]
    entries: String,
    /// The image file, for `clip.visual`.
    #[schema(value_type = Option<String>, format = Binary)]
    image: Option<Vec<u8>>,
    /// The text, for `clip.textual`.
    text: Option<String>,
}

/// Immich's CLIP answer: the embedding as a JSON array in a string (Immich stores it as is);
/// for images also the image's stored height and width.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImmichClip {
    #[schema(example = "[0.0123,-0.0456]")]
    clip: String,
    #[serde(rename = "imageHeight")]
    image_height: Option<u32>,
    #[serde(rename = "imageWidth")]
    image_width: Option<u32>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hailo-clip",
        description = "CLIP zero-shot image classification and embeddings on a Raspberry Pi 5 with a Hailo-10H NPU (backends: hailo, onnx, mock).\n\nEvery error answer is `{\"error\", \"error_type\"}`: `error` for a person, `error_type` (one of `ErrorType`) for a program.\n\nWith `server.api_key_file` set, every route but `/health` (and, with `immich.require_key: false`, `/predict` and `/ping`) needs `Authorization: Bearer <key>`."
    ),
    paths(
        routes::health::health,
        routes::info::info,
        routes::info::metrics,
        routes::classify::classify,
        routes::embed::embed_image,
        routes::embed::embed_text,
        routes::openai::embeddings,
        routes::models::list,
        routes::label_sets::list,
        routes::label_sets::get,
        routes::label_sets::put,
        routes::label_sets::delete,
        routes::immich::ping,
        routes::immich::predict,
        openapi_json,
        routes::pages::index,
        routes::pages::docs,
    ),
    components(schemas(ErrorBody, ErrorType)),
    modifiers(&BearerKey),
    tags(
        (name = "classify", description = "Zero-shot classification"),
        (name = "embed", description = "Image and text embeddings"),
        (name = "label-sets", description = "Stored labels whose class embeddings are computed once"),
        (name = "openai", description = "OpenAI's embeddings API, for texts"),
        (name = "immich", description = "Immich's remote machine-learning API, for CLIP"),
        (name = "service", description = "Health, info, metrics, this description"),
    )
)]
pub struct ApiDoc;

struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The description as JSON, with this server's version, models and limits.
pub fn spec_json(state: &AppState) -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let l = &state.engine.settings().limits;
    let limits = [
        (
            "max_body_bytes",
            l.max_body_bytes as u64,
            "bytes per request body",
        ),
        (
            "max_image_pixels",
            l.max_image_pixels,
            "decoded width x height",
        ),
        (
            "max_labels",
            l.max_labels as u64,
            "labels + negative labels per request",
        ),
        (
            "max_label_chars",
            l.max_label_chars as u64,
            "characters per label",
        ),
        (
            "max_text_chars",
            l.max_text_chars as u64,
            "characters per text to embed",
        ),
        (
            "max_templates",
            l.max_templates as u64,
            "templates per request",
        ),
        (
            "max_batch_images",
            l.max_batch_images as u64,
            "images per embed request",
        ),
        (
            "max_batch_texts",
            l.max_batch_texts as u64,
            "texts per embed request",
        ),
    ];
    let mut text = doc.info.description.take().unwrap_or_default();
    text.push_str(&format!(
        "\n\nModels here (`model`): {}.\n\n| limit | value | what |\n| --- | --- | --- |\n",
        state.models.names().join(", ")
    ));
    for (k, v, what) in limits {
        text.push_str(&format!("| `limits.{k}` | {v} | {what} |\n"));
    }
    doc.info.description = Some(text);
    doc.to_pretty_json().expect("the description serializes")
}

/// This API's OpenAPI 3.1 description.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object), Errors))]
pub async fn openapi_json(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], spec_json(&s))
}
