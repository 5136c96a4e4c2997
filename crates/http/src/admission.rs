//! Admission at the door: a request that cannot be served is refused (429 with `Retry-After`)
//! before its body is read, parsed or decoded, so overload costs almost no CPU.
//!
//! In order: the client's token bucket (`limits.client_requests_per_second`), a slot among the
//! requests in flight (`limits.max_in_flight`), and room in the budget of body bytes held
//! (`limits.max_body_bytes_in_flight`, by Content-Length). The stages behind the door have their
//! own bounds: one decode per core, the tokenizer per chunk on the blocking pool, the device
//! queue (`batching.queue_capacity`).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use config::LimitSettings;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::BodyExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The peer address of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// Marks a response refused at the door: logged in a summary, not one line each.
#[derive(Clone, Copy)]
pub struct Refused;

pub struct Admission {
    in_flight: Arc<Semaphore>,
    /// Body bytes, counted in KiB (a semaphore counts permits in u32).
    body_kib: Arc<Semaphore>,
    max_body_kib: u32,
    wait: Duration,
    rate: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Refused bodies up to this size are read and dropped (cheap) so the connection stays usable;
/// closing a socket with unread data makes the kernel reset it, and the client may lose the 429.
const DRAIN_MAX: usize = 256 * 1024;

impl Admission {
    pub fn new(l: &LimitSettings) -> Self {
        let kib = |b: u64| u32::try_from(b.div_ceil(1024)).unwrap_or(u32::MAX);
        let rate = (l.client_requests_per_second > 0.0).then(|| {
            let period = Duration::from_secs_f64(1.0 / l.client_requests_per_second);
            let burst =
                std::num::NonZeroU32::new(l.client_burst).unwrap_or(std::num::NonZeroU32::MIN);
            let q = Quota::with_period(period.max(Duration::from_nanos(1)))
                .expect("positive period")
                .allow_burst(burst);
            RateLimiter::keyed(q)
        });
        Self {
            in_flight: Arc::new(Semaphore::new(l.max_in_flight)),
            body_kib: Arc::new(Semaphore::new(kib(l.max_body_bytes_in_flight) as usize)),
            max_body_kib: kib(l.max_body_bytes as u64),
            wait: Duration::from_millis(l.admission_wait_ms),
            rate,
        }
    }

    /// Forgets clients that have been quiet long enough to have a full bucket again.
    pub fn prune(&self) {
        if let Some(r) = &self.rate {
            r.retain_recent();
            r.shrink_to_fit();
        }
    }
}

fn refuse(e: ApiError, reason: &'static str) -> Response {
    metrics::counter!("hailo_clip_refused_total", "reason" => reason).increment(1);
    let mut r = e.into_response();
    r.extensions_mut().insert(Refused);
    r
}

async fn drain(body: axum::body::Body) -> bool {
    let mut body = http_body_util::Limited::new(body, DRAIN_MAX);
    let read = async {
        loop {
            match body.frame().await {
                None => return true,
                Some(Ok(_)) => {}
                Some(Err(_)) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), read)
        .await
        .unwrap_or(false)
}

/// Refuses with `e`; the body is drained when small, else the connection closes after the answer.
async fn refuse_request(req: Request, e: ApiError, reason: &'static str) -> Response {
    let drained = drain(req.into_body()).await;
    let mut r = refuse(e, reason);
    if !drained {
        r.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    r
}

pub async fn admit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let a = &s.admission;
    // Monitoring is never refused: it is how an operator sees the overload.
    if matches!(req.uri().path(), "/health" | "/metrics") {
        return next.run(req).await;
    }
    if let (Some(rate), Some(ClientAddr(peer))) = (&a.rate, req.extensions().get::<ClientAddr>()) {
        if let Err(not_until) = rate.check_key(&peer.ip()) {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            return refuse_request(req, ApiError::RateLimited(secs), "rate_limit").await;
        }
    }
    // Only requests with a body do work worth bounding here; GETs are cheap.
    if !(req.method() == Method::POST || req.method() == Method::PUT) {
        return next.run(req).await;
    }
    let slot = match a.in_flight.clone().try_acquire_owned() {
        Ok(s) => Ok(s),
        Err(_) if !a.wait.is_zero() => {
            match tokio::time::timeout(a.wait, a.in_flight.clone().acquire_owned()).await {
                Ok(Ok(s)) => Ok(s),
                _ => Err(()),
            }
        }
        Err(_) => Err(()),
    };
    let Ok(slot) = slot else {
        return refuse_request(
            req,
            ApiError::Busy("limits.max_in_flight requests in flight"),
            "in_flight",
        )
        .await;
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let kib = match declared {
        // Over the body limit: let the extractor give its 413 without holding any budget.
        Some(n) if n > (a.max_body_kib as u64) * 1024 => 0,
        Some(n) => n.div_ceil(1024) as u32,
        None => a.max_body_kib,
    };
    let Ok(bytes) = a.body_kib.clone().try_acquire_many_owned(kib) else {
        drop(slot);
        return refuse_request(
            req,
            ApiError::Busy("limits.max_body_bytes_in_flight body bytes in flight"),
            "body_bytes",
        )
        .await;
    };
    metrics::gauge!("hailo_clip_requests_in_flight").increment(1.0);
    let _held = InFlight {
        _slot: slot,
        _bytes: bytes,
    };
    next.run(req).await
}

/// What an admitted request holds until it is answered or its client leaves.
struct InFlight {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _bytes: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("hailo_clip_requests_in_flight").decrement(1.0);
    }
}
