//! What wraps every request: the log line and route metrics (and a line for a request whose
//! client left before the answer), and the whole-request time limit.

use crate::admission::Refused;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest method or path a log line carries: a client controls both.
const LOGGED_CHARS: usize = 64;

fn clip_for_log(s: &str) -> String {
    if s.chars().count() <= LOGGED_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(LOGGED_CHARS).collect();
    out.push_str(&format!("... ({} bytes)", s.len()));
    out
}

/// Logs, when dropped before the answer went out, that the client left.
struct Watch {
    method: String,
    route: String,
    started: Instant,
    done: bool,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.done {
            metrics::counter!("hailo_clip_requests_abandoned_total", "route" => self.route.clone())
                .increment(1);
            tracing::info!(
                target: "hailo_clip::request",
                method = %self.method,
                route = %self.route,
                after_ms = format!("{:.2}", self.started.elapsed().as_secs_f64() * 1000.0),
                "abandoned: the client went away before the answer; its remaining work is dropped"
            );
        }
    }
}

/// Requests refused at the door are counted and summarised every few seconds: a line each
/// would cost more CPU under overload than refusing them.
static REFUSED: AtomicU64 = AtomicU64::new(0);
static LAST_SUMMARY: Mutex<Option<Instant>> = Mutex::new(None);
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

fn note_refused() {
    REFUSED.fetch_add(1, Ordering::Relaxed);
    let mut last = LAST_SUMMARY.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    if last.is_none_or(|t| now - t >= SUMMARY_EVERY) {
        let n = REFUSED.swap(0, Ordering::Relaxed);
        *last = Some(now);
        tracing::warn!(
            refused = n,
            "refused requests at the door (busy or rate-limited; hailo_clip_refused_total has the reasons)"
        );
    }
}

/// One log line and the route metrics for every request.
pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    // Label by the matched route only, so unknown paths cannot grow the metric set without bound.
    let route: String = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let mut watch = Watch {
        method: clip_for_log(req.method().as_str()),
        route,
        started,
        done: false,
    };
    let resp = next.run(req).await;
    watch.done = true;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    let route = std::mem::take(&mut watch.route);
    metrics::counter!("hailo_clip_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("hailo_clip_request_duration_seconds", "route" => route.clone())
        .record(secs);
    if resp.extensions().get::<Refused>().is_some() {
        note_refused();
    } else {
        tracing::info!(target: "hailo_clip::request", method = %watch.method, route, status, latency_ms = format!("{:.2}", secs * 1000.0), "request");
    }
    resp
}

/// Bounds the whole request, body read included (`limits.request_timeout_secs`).
pub async fn time_limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let limit = Duration::from_secs(s.engine.settings().limits.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_methods_are_cut_in_logs() {
        let long = "X".repeat(390_000);
        let shown = super::clip_for_log(&long);
        assert!(shown.len() < 100, "{}", shown.len());
        assert!(shown.ends_with("(390000 bytes)"));
        assert_eq!(super::clip_for_log("POST"), "POST");
    }
}
