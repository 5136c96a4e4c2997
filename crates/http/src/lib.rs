//! HTTP: the router, its middleware, the routes and their bodies, the one error mapping, and
//! serving (bind, readiness to systemd, drain on stop).

pub mod access;
mod admission;
pub mod body;
mod connections;
pub mod error;
pub mod extract;
pub mod metrics;
mod middleware;
pub mod openapi;
mod routes;
mod serve;
mod tls;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use engine::{Engine, Models};
use metrics_exporter_prometheus::PrometheusHandle;
pub use serve::{bind, serve, serve_engine, serve_models, shutdown_signal};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    /// The default model's engine (requests without `model`).
    pub engine: Arc<Engine>,
    pub models: Arc<Models>,
    pub metrics: PrometheusHandle,
    pub api_key: Option<Arc<access::ApiKey>>,
    pub hosts: Arc<access::AllowedHosts>,
    pub admission: Arc<admission::Admission>,
}

pub fn router(state: AppState) -> Router {
    let settings = state.engine.settings();
    let limit = settings.limits.max_body_bytes;
    let immich = &settings.immich;
    let immich_routes = || {
        Router::new()
            .route("/ping", get(routes::immich::ping))
            .route("/predict", post(routes::immich::predict))
    };
    let mut keyed = Router::new()
        .route("/health", get(routes::health::health))
        .route("/info", get(routes::info::info))
        .route("/metrics", get(routes::info::metrics))
        .route("/v1/classify", post(routes::classify::classify))
        .route("/v1/embed/image", post(routes::embed::embed_image))
        .route("/v1/embed/text", post(routes::embed::embed_text))
        .route("/v1/embeddings", post(routes::openai::embeddings))
        .route("/v1/models", get(routes::models::list))
        .route("/v1/label-sets", get(routes::label_sets::list))
        .route(
            "/v1/label-sets/{name}",
            get(routes::label_sets::get)
                .put(routes::label_sets::put)
                .delete(routes::label_sets::delete),
        );
    // Routes outside the API key check: static descriptions, and what a client that cannot
    // send a key needs.
    let mut open = Router::new().route("/openapi.json", get(openapi::openapi_json));
    if settings.server.web_ui {
        open = open
            .route("/", get(routes::pages::index))
            .route("/docs", get(routes::pages::docs))
            .route("/docs/rapidoc-min.js", get(routes::pages::rapidoc));
    }
    if immich.enabled {
        if immich.require_key {
            keyed = keyed.merge(immich_routes());
        } else {
            open = open.merge(immich_routes());
        }
    }
    // Outermost last: observe -> host -> time limit -> admission -> key (keyed routes) -> handler.
    keyed
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::require_key,
        ))
        .merge(open)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::check_host,
        ))
        .layer(axum::middleware::from_fn(middleware::observe))
        .with_state(state)
}
