//! Settings to a backend: the one place that knows which kinds exist and which are compiled in.

use crate::{mock, split, Backend, BackendError};
use config::{BackendKind, Settings};

/// Builds the configured backend; nothing here falls back to another kind.
pub fn build(settings: &Settings) -> Result<Box<dyn Backend>, BackendError> {
    let image = build_kind(settings.backend.kind, settings)?;
    let text_kind = settings.text_backend();
    if text_kind == settings.backend.kind {
        return Ok(image);
    }
    let text = build_kind(text_kind, settings)?;
    Ok(Box::new(split::SplitBackend::new(image, text)))
}

fn build_kind(kind: BackendKind, settings: &Settings) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Mock => Ok(Box::new(mock::MockBackend::new(
            &settings.clip.model,
            settings.backend.mock.clone(),
        ))),
        #[cfg(feature = "onnx")]
        BackendKind::Onnx => Ok(Box::new(crate::onnx::OnnxBackend::new(
            crate::onnx::OnnxOptions::from_settings(settings),
        ))),
        #[cfg(not(feature = "onnx"))]
        BackendKind::Onnx => Err(BackendError::Setup(
            "backend \"onnx\" needs a build with the `onnx` cargo feature (on by default); \
             this binary was built without it"
                .into(),
        )),
        #[cfg(feature = "hailo")]
        BackendKind::Hailo => Ok(Box::new(crate::hailo::HailoBackend::from_settings(
            settings,
        ))),
        #[cfg(not(feature = "hailo"))]
        BackendKind::Hailo => Err(BackendError::Setup(
            "backend \"hailo\" needs a build with the `hailo` cargo feature (HailoRT 5.x); \
             this binary was built without it"
                .into(),
        )),
    }
}

/// The files the configured backend(s) load, for the model's identity.
pub fn model_files(settings: &Settings) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let image = settings.backend.kind;
    let text = settings.text_backend();
    if image == BackendKind::Onnx {
        files.push(settings.onnx_image_model());
    }
    if text == BackendKind::Onnx {
        files.push(settings.onnx_text_model());
    }
    if image == BackendKind::Onnx || text == BackendKind::Onnx {
        // model.json beside the graphs changes their normalisation and names; in Immich's
        // layout the config, preprocessing, tokenizer and scoring files do.
        let sidecar = settings.onnx_image_model().with_file_name("model.json");
        files.push(sidecar);
        let dir = settings.onnx_model_dir();
        let graphs = [settings.onnx_image_model(), settings.onnx_text_model()];
        if graphs
            .iter()
            .any(|g| g.starts_with(&dir) && g.ends_with("model.onnx"))
        {
            for f in [
                "config.json",
                "visual/preprocess_cfg.json",
                "textual/tokenizer.json",
                "textual/tokenizer_config.json",
                "catalog-entry.json",
            ] {
                files.push(dir.join(f));
            }
        }
    }
    if image == BackendKind::Hailo || text == BackendKind::Hailo {
        let o = crate::hailo::HailoOptions::from_settings(settings);
        files.push(o.image_hef);
        if let Some(t) = o.text {
            files.push(t.hef);
            files.push(t.embeddings);
        }
    }
    files
}

/// Bytes the loaded model is counted at against the models' memory budget: the operator's
/// `backend.memory_mb`, else the mock's `resident_mb`, else the size of its model files (the
/// weights are resident once loaded; a file not there yet counts nothing until it is).
pub fn memory_estimate(settings: &Settings) -> u64 {
    if let Some(mb) = settings.backend.memory_mb {
        return mb << 20;
    }
    let mut bytes = 0;
    if settings.backend.kind == BackendKind::Mock || settings.text_backend() == BackendKind::Mock {
        bytes += settings.backend.mock.resident_mb << 20;
    }
    bytes
        + model_files(settings)
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum::<u64>()
}

/// What the embeddings of the configured model depend on, as a hex digest: the backends, the
/// model name and, per model file, its size and the first and last MiB of its content (a full
/// hash of a few hundred MB would cost seconds at every start on a Pi). A mock model is its
/// settings. Persisted embeddings are only reused under the same identity.
pub fn model_identity(settings: &Settings) -> String {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek, SeekFrom};
    const EDGE: u64 = 1 << 20;
    let mut h = Sha256::new();
    h.update(settings.backend.kind.as_str());
    h.update([0]);
    h.update(settings.text_backend().as_str());
    h.update([0]);
    h.update(&settings.clip.model);
    h.update([0]);
    if settings.backend.kind == BackendKind::Mock {
        let m = &settings.backend.mock;
        h.update(format!("{}x{}", m.embedding_dimension, m.image_size));
    }
    for path in model_files(settings) {
        h.update(
            path.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or(b""),
        );
        let Ok(mut f) = std::fs::File::open(&path) else {
            h.update(b"(absent)");
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        h.update(len.to_le_bytes());
        let mut buf = Vec::with_capacity(EDGE as usize);
        let _ = f.by_ref().take(EDGE).read_to_end(&mut buf);
        if len > EDGE {
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(EDGE).max(EDGE)));
            let _ = f.take(EDGE).read_to_end(&mut buf);
        }
        h.update(&buf);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
