//! Handlers: parse the body, hand it to the engine, shape the answer; one module per route.

pub mod classify;
pub mod embed;
pub mod health;
pub mod immich;
pub mod info;
pub mod label_sets;
pub mod models;
pub mod openai;
pub mod pages;

use crate::error::ApiError;
use axum::Json;

/// A JSON body read under the limits (crate::extract); `let Json(b) = body?;`.
type Body<T> = Result<Json<T>, ApiError>;

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(crate) fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
