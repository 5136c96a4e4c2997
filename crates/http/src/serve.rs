//! Serving: bind, warm up, tell systemd the service is ready, drain on SIGTERM/SIGINT.

use crate::access::{AllowedHosts, ApiKey};
use crate::admission::Admission;
use crate::connections::{raise_fd_limit, Transport};
use crate::AppState;
use anyhow::Context;
use config::Settings;
use engine::health::Phase;
use engine::{Engine, Models};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Connections the kernel holds before the accept loop takes them: bursts of clients (a
/// thousand at once) must not overflow it, or their SYNs wait a second to be retried.
const LISTEN_BACKLOG: u32 = 4096;

pub async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let addr = format!("{}:{}", settings.server.host, settings.server.port);
    let ctx = || format!("cannot listen on {addr} (server.host/server.port)");
    let sock_addr = tokio::net::lookup_host(&addr)
        .await
        .with_context(ctx)?
        .next()
        .with_context(ctx)?;
    let socket = if sock_addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .with_context(ctx)?;
    socket.set_reuseaddr(true).with_context(ctx)?;
    socket.bind(sock_addr).with_context(ctx)?;
    socket.listen(LISTEN_BACKLOG).with_context(ctx)
}

/// Runs until `shutdown` resolves, then stops accepting and answers what is in flight.
pub async fn serve(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let models = Models::start(&settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    serve_models(models, listener, shutdown, started).await
}

/// As `serve`, with an engine the caller built (tests wrap the backend to count device calls).
pub async fn serve_engine(
    engine: Arc<Engine>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: Instant,
) -> anyhow::Result<()> {
    serve_models(Models::of(vec![engine]), listener, shutdown, started).await
}

/// As `serve`, with the models the caller built; the default model's settings rule the server.
pub async fn serve_models(
    models: Arc<Models>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    started: Instant,
) -> anyhow::Result<()> {
    let engine = models.default_engine().clone();
    let settings = engine.settings().clone();
    let api_key = settings
        .server
        .api_key_file
        .clone()
        .map(ApiKey::open)
        .transpose()?
        .map(Arc::new);
    let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
    let l = &settings.limits;
    let admission = Arc::new(Admission::new(l));
    let state = AppState {
        engine: engine.clone(),
        models: models.clone(),
        metrics: crate::metrics::handle(),
        api_key,
        hosts: Arc::new(AllowedHosts::new(&settings.server.allowed_hosts)),
        admission: admission.clone(),
    };
    let app = crate::router(state);
    let addr = listener.local_addr()?;
    let tls = match &settings.server.tls {
        Some(t) => {
            let (acceptor, certs) = crate::tls::acceptor(t)?;
            reload_on_sighup(certs);
            Some(acceptor)
        }
        None => None,
    };
    let transport = Transport {
        max_connections: raise_fd_limit(l.max_connections),
        header_timeout: Duration::from_secs(l.header_timeout_secs),
        tls,
    };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            admission.prune();
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let graceful = crate::connections::run(listener, app, transport, stop_rx).await;
        graceful.shutdown().await;
    });
    let several = models.names().len() > 1;
    for e in models.iter() {
        let phase = e.wait_settled().await;
        if let Phase::Failed(reason) = &phase {
            if e.settings().backend.warmup {
                let _ = stop_tx.send(true);
                if several {
                    anyhow::bail!(
                        "warm-up of model {} failed: {reason}",
                        e.settings().clip.model
                    );
                }
                anyhow::bail!("warm-up failed: {reason}");
            }
        }
    }
    tracing::info!(
        %addr,
        backend = engine.backend_name(),
        models = %models.names().join(","),
        ready_ms = started.elapsed().as_millis() as u64,
        "serving"
    );
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    shutdown.await;
    tracing::info!("stopping: no new connections; answering requests in flight");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    match tokio::time::timeout(grace, server).await {
        Ok(r) => r?,
        Err(_) => tracing::warn!(
            secs = grace.as_secs(),
            "grace period over; exiting with requests in flight"
        ),
    }
    let m = models.clone();
    let _ = tokio::task::spawn_blocking(move || m.iter().for_each(|e| e.flush_text_cache())).await;
    tracing::info!("stopped");
    Ok(())
}

/// Registers the SIGTERM/SIGINT handlers now (before READY=1 is sent, so an early stop still
/// drains) and resolves when one arrives.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = int.recv() => tracing::info!("SIGINT"),
        }
    }
}

/// SIGHUP re-reads the TLS certificate and key (they are also re-read when the files change).
fn reload_on_sighup(certs: Arc<crate::tls::ReloadingCert>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let c = certs.clone();
            let _ = tokio::task::spawn_blocking(move || c.refresh(true)).await;
        }
    });
}
