//! HTTP: routes, the request log line and metrics, the API key check.

pub mod error;
pub mod routes;
pub mod types;

use crate::engine::Engine;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Instant;

const ROUTES: [&str; 6] = [
    "/health",
    "/info",
    "/metrics",
    "/v1/classify",
    "/v1/embed/image",
    "/v1/embed/text",
];

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub metrics: PrometheusHandle,
    pub api_key: Option<Arc<str>>,
}

pub fn router(state: AppState) -> Router {
    let limit = state.engine.settings().limits.max_body_bytes;
    Router::new()
        .route("/health", get(routes::health))
        .route("/info", get(routes::info))
        .route("/metrics", get(routes::metrics))
        .route("/v1/classify", post(routes::classify))
        .route("/v1/embed/image", post(routes::embed_image))
        .route("/v1/embed/text", post(routes::embed_text))
        .fallback(routes::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_key))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// One log line and the route metrics for every request.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // Label by known route only, so unknown paths cannot grow the metric set without bound.
    let route = ROUTES
        .iter()
        .find(|r| **r == req.uri().path())
        .copied()
        .unwrap_or("unmatched");
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics::counter!("hailo_clip_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("hailo_clip_request_duration_seconds", "route" => route).record(secs);
    tracing::info!(target: "hailo_clip::request", %method, route, status, latency_ms = format!("{:.2}", secs * 1000.0), "request");
    resp
}

async fn require_key(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(key) = &s.api_key {
        let open = req.uri().path() == "/health";
        let given = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !open && !given.is_some_and(|g| constant_time_eq(g.as_bytes(), key.as_bytes())) {
            return error::ApiError::Unauthorized.into_response();
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
