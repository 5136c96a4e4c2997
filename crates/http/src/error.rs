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
    /// Refused at the door, before the body is read: which limit is full.
    #[error("the service is busy ({0}); retry later")]
    Busy(&'static str),
    #[error(
        "too many requests from this client (limits.client_requests_per_second); retry in {0} s"
    )]
    RateLimited(u64),
    #[error(
        "the request body did not arrive in time (limits.body_timeout_secs, limits.body_idle_secs)"
    )]
    BodyTimeout,
    #[error("the request took longer than limits.request_timeout_secs")]
    Timeout,
    #[error("host {0:?} is not served here (server.allowed_hosts)")]
    HostNotAllowed(String),
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

/// Every error answer's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person; names the setting when a limit was hit.
    pub error: String,
    pub error_type: ErrorType,
}

/// What kind of error, for a program: one value per different fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidBase64,
    InvalidImage,
    UnsupportedImage,
    ImageTooLarge,
    InvalidRequest,
    ModelNotFound,
    LabelSetNotFound,
    LabelSetStale,
    Overloaded,
    NotReady,
    InsufficientMemory,
    BackendUnavailable,
    ShuttingDown,
    Internal,
    BodyTooLarge,
    UnsupportedMediaType,
    MalformedJson,
    InvalidMultipart,
    UnsupportedTask,
    Unauthorized,
    NotFound,
    RateLimited,
    BodyTimeout,
    Timeout,
    HostNotAllowed,
}

/// The snake_case name, as in the body (for log lines).
impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => f.write_str(&s),
            _ => Err(std::fmt::Error),
        }
    }
}

impl ApiError {
    pub fn status_and_type(&self) -> (StatusCode, ErrorType) {
        use EngineError as E;
        use ErrorType as T;
        use PreprocessError as P;
        match self {
            ApiError::Engine(e) => match e {
                E::Image(P::InvalidBase64(_)) => (StatusCode::BAD_REQUEST, T::InvalidBase64),
                E::Image(P::InvalidImage(_)) => (StatusCode::BAD_REQUEST, T::InvalidImage),
                E::Image(P::UnsupportedImage(_)) => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, T::UnsupportedImage)
                }
                E::Image(P::ImageTooLarge(_)) => (StatusCode::PAYLOAD_TOO_LARGE, T::ImageTooLarge),
                E::Image(P::Internal(_)) => (StatusCode::INTERNAL_SERVER_ERROR, T::Internal),
                E::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, T::InvalidRequest),
                E::ModelNotFound { .. } => (StatusCode::NOT_FOUND, T::ModelNotFound),
                E::LabelSetNotFound(_) => (StatusCode::NOT_FOUND, T::LabelSetNotFound),
                E::LabelSetStale(_) => (StatusCode::CONFLICT, T::LabelSetStale),
                E::Overloaded => (StatusCode::TOO_MANY_REQUESTS, T::Overloaded),
                E::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, T::NotReady),
                E::InsufficientMemory(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, T::InsufficientMemory)
                }
                E::Backend(_) => (StatusCode::SERVICE_UNAVAILABLE, T::BackendUnavailable),
                E::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, T::ShuttingDown),
                E::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, T::Internal),
            },
            ApiError::Json(_, s) => match *s {
                StatusCode::PAYLOAD_TOO_LARGE => (*s, T::BodyTooLarge),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (*s, T::UnsupportedMediaType),
                StatusCode::UNPROCESSABLE_ENTITY => (*s, T::InvalidRequest),
                _ => (*s, T::MalformedJson),
            },
            ApiError::Multipart(_, s) => match *s {
                StatusCode::PAYLOAD_TOO_LARGE => (*s, T::BodyTooLarge),
                StatusCode::UNSUPPORTED_MEDIA_TYPE => (*s, T::UnsupportedMediaType),
                _ => (StatusCode::BAD_REQUEST, T::InvalidMultipart),
            },
            ApiError::UnsupportedTask(_) => (StatusCode::UNPROCESSABLE_ENTITY, T::UnsupportedTask),
            ApiError::ModelNotMapped(_) => (StatusCode::NOT_FOUND, T::ModelNotFound),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, T::Unauthorized),
            ApiError::NotFound => (StatusCode::NOT_FOUND, T::NotFound),
            ApiError::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, T::Overloaded),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, T::RateLimited),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, T::BodyTimeout),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, T::Timeout),
            ApiError::HostNotAllowed(_) => (StatusCode::MISDIRECTED_REQUEST, T::HostNotAllowed),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = self.status_and_type();
        if status.is_server_error() {
            tracing::warn!(error = %self, %error_type, "request failed");
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
                error_type,
            }),
        )
            .into_response();
        use axum::http::{header, HeaderValue};
        let h = resp.headers_mut();
        match &self {
            ApiError::RateLimited(secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            ApiError::Unauthorized => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"hailo-clip\""),
                );
            }
            _ if status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        if matches!(self, ApiError::BodyTimeout) {
            // The rest of a body that stalled is not worth waiting for.
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
