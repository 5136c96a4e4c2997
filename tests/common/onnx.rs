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

/// A file of the tiny random-weight ResNet CLIP (tests/fixtures/tiny-rn).
pub fn tiny(file: &str) -> PathBuf {
    super::fixture("tiny-rn").join(file)
}

/// tools/make-fixtures.py's torch outputs for the tiny model.
pub fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(tiny("reference.json")).unwrap()).unwrap()
}
