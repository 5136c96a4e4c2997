//! Admission at the door: a request that cannot be served is refused (429 with `Retry-After`)
//! before its body is read, parsed or decoded, so overload costs almost no CPU.
//!
//! In order: the connection's pace (a client that comes back before the `Retry-After` it was
//! given waits it out here), the client's token bucket (`limits.client_requests_per_second`), a
//! slot among the requests in flight (`limits.max_in_flight`), and room in the budget of body
//! bytes held (`limits.max_body_bytes_in_flight`, by Content-Length). The stages behind the door
//! have their own bounds: one decode per core, the tokenizer per chunk on the blocking pool, the
//! device queue (`batching.queue_capacity`).
//!
//! When every slot is taken, a request may wait for one up to `limits.admission_wait_ms`, but
//! only when the wait it can expect (the requests waiting ahead of it, at the pace slots have
//! been freed lately) is within half of that time; otherwise it is refused at once with
//! `Retry-After: 1`. A client that honours it gets its 429 in milliseconds; one that retries at
//! once is held that second on its connection, so refusals never take the cores from the
//! requests being served.

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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The peer address of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// A connection's pace: until when its next request waits before it is looked at (the end of
/// the last `Retry-After` it was given), in ms since [`epoch`]; 0: no wait.
#[derive(Clone, Default)]
pub struct Pace(Arc<AtomicU64>);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

impl Pace {
    /// Waits out what is left of the last `Retry-After`.
    async fn wait(&self) {
        let until = self.0.load(Ordering::Relaxed);
        let now = now_ms();
        if until > now {
            tokio::time::sleep(Duration::from_millis(until - now)).await;
        }
    }

    fn hold_for(&self, secs: u64) {
        self.0.store(now_ms() + secs * 1000, Ordering::Relaxed);
    }
}

/// Marks a response refused at the door: logged in a summary, not one line each.
#[derive(Clone, Copy)]
pub struct Refused;

pub struct Admission {
    in_flight: Arc<Semaphore>,
    /// Body bytes, counted in KiB (a semaphore counts permits in u32).
    body_kib: Arc<Semaphore>,
    max_body_kib: u32,
    wait: Duration,
    max_in_flight: usize,
    /// Requests waiting for a slot now.
    waiting: AtomicUsize,
    /// How long a slot has lately been held, in µs (moving average; 0: not measured yet).
    held_us: Arc<AtomicU64>,
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
            max_in_flight: l.max_in_flight.max(1),
            waiting: AtomicUsize::new(0),
            held_us: Arc::new(AtomicU64::new(0)),
            rate,
        }
    }

    /// The wait a request joining the waiters now can expect: slots free up at
    /// `max_in_flight / held` per second, and each waiter ahead takes one.
    fn expected_wait(&self) -> Option<Duration> {
        let held = self.held_us.load(Ordering::Relaxed);
        if held == 0 {
            return None;
        }
        let ahead = self.waiting.load(Ordering::Relaxed) as u64 + 1;
        Some(Duration::from_micros(
            ahead * held / self.max_in_flight as u64,
        ))
    }

    /// Waits for a slot when one can be expected within half of `limits.admission_wait_ms` (the
    /// other half absorbs the estimate's error, so a request that waits is rarely refused at the
    /// end of its wait after all) and fewer than `limits.max_in_flight` wait already; Err:
    /// refused, and the reason for the metric.
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, &'static str> {
        if let Ok(s) = self.in_flight.clone().try_acquire_owned() {
            return Ok(s);
        }
        // At most as many wait as are in flight: the hold time is learnt from the requests
        // served, and after a quiet spell it is too short for a sudden crowd.
        if self.wait.is_zero()
            || self.waiting.load(Ordering::Relaxed) >= self.max_in_flight
            || self.expected_wait().is_some_and(|e| e > self.wait / 2)
        {
            return Err("in_flight");
        }
        let _waiting = Waiting::join(&self.waiting);
        let got = tokio::time::timeout(self.wait, self.in_flight.clone().acquire_owned()).await;
        match got {
            Ok(Ok(s)) => Ok(s),
            _ => Err("in_flight_waited"),
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
    refuse_for(req, e, reason, None).await
}

/// As [`refuse_request`], telling the client when to come back and holding its connection's
/// next request until then.
async fn refuse_for(
    req: Request,
    e: ApiError,
    reason: &'static str,
    retry_secs: Option<u64>,
) -> Response {
    if let (Some(secs), Some(pace)) = (retry_secs, req.extensions().get::<Pace>()) {
        pace.hold_for(secs);
    }
    let drained = drain(req.into_body()).await;
    let mut r = refuse(e, reason);
    if let Some(secs) = retry_secs {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
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
    if let Some(pace) = req.extensions().get::<Pace>() {
        pace.wait().await;
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
    let slot = match a.slot().await {
        Ok(s) => s,
        Err(reason) => {
            // One second, HTTP's smallest Retry-After: about what the waiters that were let in
            // take to be worked off (half of `limits.admission_wait_ms`, 1 s by default).
            return refuse_for(
                req,
                ApiError::Busy("limits.max_in_flight requests in flight"),
                reason,
                Some(1),
            )
            .await;
        }
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
        since: Instant::now(),
        held_us: a.held_us.clone(),
    };
    next.run(req).await
}

/// One request among the waiters; it leaves them when dropped, also when its client goes away
/// mid-wait (the request's future is dropped then, and a count kept by hand would leak).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn join(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What an admitted request holds until it is answered or its client leaves.
struct InFlight {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _bytes: tokio::sync::OwnedSemaphorePermit,
    since: Instant,
    held_us: Arc<AtomicU64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("hailo_clip_requests_in_flight").decrement(1.0);
        // Moving average over about the last 16 requests; races between two drops lose one
        // sample, which an estimate can afford.
        let us = self.since.elapsed().as_micros().min(u64::MAX as u128) as u64;
        let old = self.held_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            us
        } else {
            old - old / 16 + us / 16
        };
        self.held_us.store(new.max(1), Ordering::Relaxed);
    }
}
