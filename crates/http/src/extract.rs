//! JSON request bodies, read under the limits: a byte limit, a total time and a longest pause
//! (a slow upload cannot hold a request slot and its buffer for ever), and a cap on list lengths
//! while parsing (a 20 MB array of one-letter strings is refused after its first elements,
//! not after half a gigabyte of `String`s).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::Json;
use http_body_util::BodyExt;
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::cell::Cell;
use std::time::Duration;
use tokio::time::Instant;

// Longest list any request field may hold; set from the limits while a body is parsed.
thread_local! {
    static LIST_CAP: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A list field of a request body, refused while parsing once it exceeds the longest list the
/// limits allow (the field's own limit is checked later, with its own message).
#[derive(Debug, Default)]
pub struct List<T>(pub Vec<T>);

impl<T> List<T> {
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Capped<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Capped<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let cap = LIST_CAP.with(Cell::get);
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(v) = seq.next_element()? {
                    if out.len() == cap {
                        return Err(serde::de::Error::custom(format!(
                            "a list of more than {cap} items (twice the largest of limits.max_labels, max_templates, max_batch_images, max_batch_texts)"
                        )));
                    }
                    out.push(v);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Capped(std::marker::PhantomData))
            .map(List)
    }
}

/// Parses `bytes` with every [`List`] capped at `cap` items.
fn parse<T: DeserializeOwned>(bytes: &[u8], cap: usize) -> Result<T, ApiError> {
    struct Reset(usize);
    impl Drop for Reset {
        fn drop(&mut self) {
            LIST_CAP.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(LIST_CAP.with(|c| c.replace(cap)));
    Json::<T>::from_bytes(bytes)
        .map(|Json(v)| v)
        .map_err(ApiError::from)
}

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Reads a body up to `limit` bytes, within `total` and with no pause longer than `idle`.
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
    total: Duration,
    idle: Duration,
) -> Result<Vec<u8>, ApiError> {
    let deadline = Instant::now() + total;
    let mut body = body;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let wait = idle.min(deadline.saturating_duration_since(Instant::now()));
        let frame = match tokio::time::timeout(wait, body.frame()).await {
            Err(_) => return Err(ApiError::BodyTimeout),
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => {
                return Err(ApiError::Json(
                    format!("Failed to read the request body: {e}"),
                    StatusCode::BAD_REQUEST,
                ))
            }
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(ApiError::Json(
                    format!("request body is over {limit} bytes (limits.max_body_bytes)"),
                    StatusCode::PAYLOAD_TOO_LARGE,
                ));
            }
            out.extend_from_slice(&data);
        }
    }
}

/// The route handlers' body: `let Json(b) = body?;`.
/// Bodies below this are parsed on the runtime (microseconds); larger ones on the blocking pool.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

impl<T: DeserializeOwned + Send + 'static> FromRequest<AppState> for Result<Json<T>, ApiError> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Ok(Err(ApiError::Json(
                "Expected request with `Content-Type: application/json`".into(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            )));
        }
        let l = &s.engine.settings().limits;
        let bytes = match read_body(
            req.into_body(),
            l.max_body_bytes,
            Duration::from_secs(l.body_timeout_secs),
            Duration::from_secs(l.body_idle_secs),
        )
        .await
        {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let cap = [
            l.max_labels,
            l.max_templates,
            l.max_batch_images,
            l.max_batch_texts,
        ]
        .into_iter()
        .max()
        .unwrap_or(usize::MAX)
        // Room above the largest limit, so a list a little over its limit gets that limit's own
        // message; a list far over it is refused while parsing.
        .saturating_mul(2);
        if bytes.len() < PARSE_INLINE_BYTES {
            return Ok(parse::<T>(&bytes, cap).map(Json));
        }
        // Parsing megabytes is CPU work: off the runtime, so /health and small requests on the
        // same workers keep answering.
        let parsed = tokio::task::spawn_blocking(move || parse::<T>(&bytes, cap)).await;
        Ok(match parsed {
            Ok(r) => r.map(Json),
            Err(e) => Err(ApiError::Engine(engine::EngineError::Internal(format!(
                "body parse task: {e}"
            )))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct B {
        texts: List<String>,
    }

    #[test]
    fn lists_stop_at_the_cap() {
        let ok: B = parse(br#"{"texts":["a","b"]}"#, 2).unwrap();
        assert_eq!(ok.texts.0, ["a", "b"]);
        let err = parse::<B>(br#"{"texts":["a","b","c"]}"#, 2).err().unwrap();
        assert_eq!(err.status_and_type().0, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.to_string().contains("more than 2 items"), "{err}");
        // The cap is per parse.
        assert_eq!(LIST_CAP.with(Cell::get), usize::MAX);
    }

    #[test]
    fn content_types() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/vnd.api+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}
