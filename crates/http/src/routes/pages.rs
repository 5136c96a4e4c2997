//! The page to try the service at `/` and the API reference at `/docs`: static files built into
//! the binary, nothing fetched from elsewhere (the appliance often has no internet; the
//! Content-Security-Policy holds the pages to this origin).

use axum::http::header;
use axum::response::IntoResponse;

const INDEX: &str = include_str!("../../assets/index.html");
const DOCS: &str = include_str!("../../assets/docs.html");
/// RapiDoc (MIT, assets/rapidoc-LICENSE.txt), the npm package pinned in web/package.json;
/// web/vendor.sh copies it here and the contract run checks the copy.
const RAPIDOC: &[u8] = include_bytes!("../../assets/rapidoc-min.js");

const CSP: &str =
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
                   script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn html(body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The page to try the service: classify or embed an image or a text.
#[utoipa::path(get, path = "/", tag = "service",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String), crate::openapi::Errors))]
pub async fn index() -> impl IntoResponse {
    html(INDEX)
}

/// This API's reference, rendered from `/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "service",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String), crate::openapi::Errors))]
pub async fn docs() -> impl IntoResponse {
    html(DOCS)
}

pub async fn rapidoc() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        RAPIDOC,
    )
}
