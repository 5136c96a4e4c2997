//! The one place where errors become HTTP: `{"error", "error_type"}` with the right status.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use engine::{EngineError, PreprocessError};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Json(String, StatusCode),
    /// A multipart body that cannot be read (status: 400, 413 or 415).
    #[error("{0}")]
    Multipart(String, StatusCode),
    /// A task this service does not run (Immich's faces, OCR): Immich then tries its next
    /// machine-learning URL.
    #[error("{0}")]
    UnsupportedTask(String),
    #[error("{0}")]
    ModelNotMapped(String),
    #[error("missing or wrong API key")]
    Unauthorized,
    #[error("not found")]
    NotFound,
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match &r {
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // Body over the limit surfaces here as 413; other read failures keep their status.
            other => other.status(),
        };
        ApiError::Json(r.body_text(), status)
    }
}

#[derive(Serialize)]
pub struct ErrorBody {
    pub error: String,
    pub error_type: &'static str,
}

impl ApiError {
    pub fn status_and_type(&self) -> (StatusCode, &'static str) {
        use EngineError as E;
        use PreprocessError as P;
        match self {
            ApiError::Engine(e) => match e {
                E::Image(P::InvalidBase64(_)) => (StatusCode::BAD_REQUEST, "invalid_base64"),
                E::Image(P::InvalidImage(_)) => (StatusCode::BAD_REQUEST, "invalid_image"),
                E::Image(P::UnsupportedImage(_)) => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_image")
                }
                E::Image(P::ImageTooLarge(_)) => (StatusCode::PAYLOAD_TOO_LARGE, "image_too_large"),
                E::Image(P::Internal(_)) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                E::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
                E::ModelNotFound { .. } => (StatusCode::NOT_FOUND, "model_not_found"),
                E::LabelSetNotFound(_) => (StatusCode::NOT_FOUND, "label_set_not_found"),
                E::LabelSetStale(_) => (StatusCode::CONFLICT, "label_set_stale"),
                E::Overloaded => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
                E::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
                E::Backend(_) => (StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable"),
                E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
                E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            },
            ApiError::Json(_, s) => match *s {
                StatusCode::PAYLOAD_TOO_LARGE => (*s, "body_too_large"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (*s, "unsupported_media_type"),
                StatusCode::UNPROCESSABLE_ENTITY => (*s, "invalid_request"),
                _ => (*s, "malformed_json"),
            },
            ApiError::Multipart(_, s) => match *s {
                StatusCode::PAYLOAD_TOO_LARGE => (*s, "body_too_large"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (*s, "unsupported_media_type"),
                _ => (StatusCode::BAD_REQUEST, "invalid_multipart"),
            },
            ApiError::UnsupportedTask(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_task"),
            ApiError::ModelNotMapped(_) => (StatusCode::NOT_FOUND, "model_not_found"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = self.status_and_type();
        if status.is_server_error() {
            tracing::warn!(error = %self, error_type, "request failed");
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
                error_type,
            }),
        )
            .into_response();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        resp
    }
}
