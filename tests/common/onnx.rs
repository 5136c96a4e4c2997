//! What the ONNX tests share: the runtime library and the tiny fixture model with its torch
//! references.

use std::path::PathBuf;

const HINT: &str = "the onnx tests need libonnxruntime.so. Run \
    `export ORT_DYLIB_PATH=\"$(scripts/install-onnxruntime.sh)\"` before cargo test \
    (scripts/test.sh does this)";

/// `$ORT_DYLIB_PATH`; the tests fail rather than skip without it.
pub fn library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "ORT_DYLIB_PATH={} does not exist; {HINT}",
                p.display()
            );
            p
        }
        _ => panic!("ORT_DYLIB_PATH is not set: {HINT}"),
    }
}

/// `start`, then wait out warm-up: loading ONNX sessions can take longer than common::start's
/// short wait when the test binaries run in parallel on a small machine.
pub async fn start_loaded(settings: config::Settings) -> super::TestServer {
    let srv = super::start(settings).await;
    super::wait_while_loading(
        &srv.client,
        &srv.url,
        600,
        std::time::Duration::from_millis(100),
    )
    .await;
    srv
}

/// [`start_loaded`], and a start-up that failed (its listener closed) panics with the server's
/// own error.
pub async fn start_ready(settings: config::Settings) -> super::TestServer {
    let srv = start_loaded(settings).await;
    if srv.client.get(srv.at("/health")).send().await.is_err() {
        panic!("the service did not start: {:?}", srv.stop().await);
    }
    srv
}

/// A file of the tiny random-weight ResNet CLIP (tests/fixtures/tiny-rn).
pub fn tiny(file: &str) -> PathBuf {
    super::fixture("tiny-rn").join(file)
}

/// tools/make-fixtures.py's torch outputs for the tiny model.
pub fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tiny("reference.json")).unwrap()).unwrap()
}
