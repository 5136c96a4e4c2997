//! Serving: bind, warm up, tell systemd the service is ready, drain on SIGTERM/SIGINT.

use crate::AppState;
use anyhow::Context;
use config::Settings;
use engine::health::Phase;
use engine::{Engine, Models};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let addr = format!("{}:{}", settings.server.host, settings.server.port);
    TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (server.host/server.port)"))
}

fn read_api_key(settings: &Settings) -> anyhow::Result<Option<Arc<str>>> {
    let Some(path) = &settings.server.api_key_file else {
        return Ok(None);
    };
    let key = std::fs::read_to_string(path)
        .with_context(|| format!("server.api_key_file: cannot read {}", path.display()))?;
    let key = key.trim();
    anyhow::ensure!(
        !key.is_empty(),
        "server.api_key_file: {} is empty",
        path.display()
    );
    Ok(Some(key.into()))
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
    let api_key = read_api_key(engine.settings())?;
    let grace = Duration::from_secs(engine.settings().server.shutdown_grace_secs);
    let state = AppState {
        engine: engine.clone(),
        models: models.clone(),
        metrics: crate::metrics::handle(),
        api_key,
    };
    let app = crate::router(state);
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop_for_server = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_for_server.wait_for(|v| *v).await;
            })
            .await
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
        Ok(r) => r??,
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
