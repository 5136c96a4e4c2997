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
