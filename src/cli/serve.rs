//! `hailo-clip serve`: the HTTP service.

use super::logging;
use config::Settings;
use std::path::Path;

/// HTTP and image decoding yield the CPU to the device thread (which keeps the unit's priority),
/// so a finished batch is answered and the next one started without waiting for a core.
/// Linux nice values are per thread and raising one needs no privilege.
fn lower_priority() {
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (current + 5).min(19));
    }
}

pub fn run(config: Option<&Path>) -> anyhow::Result<()> {
    // Logging level comes from the config, so read it before anything logs.
    let (settings, from) = Settings::load(config)?;
    logging::init(&settings.logging.level);
    match &from {
        Some(p) => tracing::info!(config = %p.display(), "config loaded"),
        None => tracing::info!("no config file found; using defaults"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(lower_priority)
        .build()?;
    rt.block_on(async move {
        let listener = hailo_clip_http::bind(&settings).await?;
        hailo_clip_http::serve(settings, listener, hailo_clip_http::shutdown_signal()).await
    })
}
