//! Connections: accepted up to `limits.max_connections`, each served by hyper's HTTP/1 with a
//! header timeout (which also ends idle kept-alive connections), optionally behind TLS, and
//! closed gracefully at a stop.

use crate::admission::{ClientAddr, Pace};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

pub struct Transport {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Largest request head (request line + headers); beyond it hyper answers 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Raises the open-file soft limit to the hard one (systemd's default soft limit, 1024, would
/// otherwise cap connections), and returns how many connections fit in what it allows.
pub fn raise_fd_limit(wanted: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return wanted;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    // Files, model mappings and the runtime's own descriptors need some room besides sockets.
    let fit = (lim.rlim_cur as usize).saturating_sub(128).max(16);
    if fit < wanted {
        tracing::warn!(
            open_files = lim.rlim_cur,
            max_connections = wanted,
            using = fit,
            "the open-file limit caps connections below limits.max_connections (raise LimitNOFILE)"
        );
    }
    wanted.min(fit)
}

/// Accepts until `stop` turns true, then lets the open connections finish (the caller bounds
/// how long with the grace period).
pub async fn run(
    listener: TcpListener,
    app: Router,
    t: Transport,
    mut stop: watch::Receiver<bool>,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(t.max_connections));
    metrics::gauge!("hailo_clip_connections").set(0.0);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => Some(r),
            _ = stop.wait_for(|v| *v) => None,
        };
        let (stream, peer) = match accepted {
            None => break,
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                // Out of descriptors or memory: wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("hailo_clip_refused_total", "reason" => "connections").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = t.tls.clone();
        let header_timeout = t.header_timeout;
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            metrics::gauge!("hailo_clip_connections").increment(1.0);
            let pace = Pace::default();
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                req.extensions_mut().insert(pace.clone());
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
            let mut h1 = hyper::server::conn::http1::Builder::new();
            h1.timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEAD_BYTES.max(8192));
            match tls {
                None => {
                    let conn = h1.serve_connection(TokioIo::new(stream), svc);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    if let Some(s) = handshake(stream, &acceptor, header_timeout).await {
                        let conn = h1.serve_connection(TokioIo::new(s), svc);
                        let _ = watcher.watch(conn).await;
                    }
                }
            }
            metrics::gauge!("hailo_clip_connections").decrement(1.0);
        });
    }
    drop(listener);
    graceful
}

/// The TLS handshake within the header timeout; a client speaking plain HTTP to the TLS port
/// gets a plain 400 saying so, instead of a handshake error it cannot read.
async fn handshake(
    mut stream: TcpStream,
    acceptor: &tokio_rustls::TlsAcceptor,
    within: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(within, stream.peek(&mut first)).await;
    if !matches!(peeked, Ok(Ok(1))) {
        return None;
    }
    // 0x16: a TLS handshake record.
    if first[0] != 0x16 {
        // Read what the client sent first: closing with unread data would reset the connection
        // and could destroy the answer.
        let mut sink = [0u8; 16 * 1024];
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::io::AsyncReadExt::read(&mut stream, &mut sink),
        )
        .await;
        let msg = "this port serves HTTPS: use https://\n";
        let resp = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{msg}",
            msg.len()
        );
        let _ = stream.write_all(resp.as_bytes()).await;
        let _ = stream.shutdown().await;
        return None;
    }
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}
