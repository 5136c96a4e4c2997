//! Log lines to stderr, filtered by `logging.level` (RUST_LOG wins).

use tracing_subscriber::EnvFilter;

/// Under journald (JOURNAL_STREAM set) the journal stamps each line, so ours would be a duplicate.
pub fn init(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().with_ansi(false).try_init()
    } else {
        builder.try_init()
    };
}
