//! Where the Hailo backend finds its files and how it configures the HEFs, from the settings.

use config::{BackendKind, Settings};
use std::path::PathBuf;

pub const DEFAULT_IMAGE_HEF: &str = "image_encoder.hef";
pub const DEFAULT_TEXT_HEF: &str = "text_encoder.hef";
pub const DEFAULT_TEXT_EMBEDDINGS: &str = "text_embeddings.npz";
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The architecture our HEFs must be compiled for.
pub const ARCH: &str = "hailo10h";

#[derive(Debug, Clone, PartialEq)]
pub struct TextFiles {
    pub hef: PathBuf,
    pub embeddings: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HailoOptions {
    pub model_name: String,
    pub image_hef: PathBuf,
    /// Set when texts are encoded on the chip too.
    pub text: Option<TextFiles>,
    /// Batch size to configure the HEFs with (0 = HailoRT's choice).
    pub batch_size: u16,
    pub timeout_ms: u32,
    /// Open the device in HailoRT's shared group (`backend.hailo.share_device`).
    pub share_device: bool,
    /// Ask HailoRT for FLOAT32 host buffers (it (de)quantises); false keeps the HEFs' own formats
    /// and (de)quantises here.
    pub host_float: bool,
}

/// HailoRT's VDevice group of the processes that share a Hailo-10H (hailo-apps' `SHARED_VDEVICE_GROUP_ID`).
pub const SHARED_GROUP: &str = "SHARED";

impl HailoOptions {
    /// The VDevice group to open the device in: None is HailoRT's default, a device alone.
    pub fn group_id(&self) -> Option<&'static str> {
        self.share_device.then_some(SHARED_GROUP)
    }

    pub fn from_settings(s: &Settings) -> Self {
        let h = &s.backend.hailo;
        let dir = s.models_dir();
        let text = (s.text_backend() == BackendKind::Hailo).then(|| TextFiles {
            hef: h
                .text_hef
                .clone()
                .unwrap_or_else(|| dir.join(DEFAULT_TEXT_HEF)),
            embeddings: h
                .text_embeddings
                .clone()
                .unwrap_or_else(|| dir.join(DEFAULT_TEXT_EMBEDDINGS)),
        });
        Self {
            model_name: s.clip.model.clone(),
            image_hef: h
                .image_hef
                .clone()
                .unwrap_or_else(|| dir.join(DEFAULT_IMAGE_HEF)),
            text,
            batch_size: s.batching.max_batch_size.clamp(1, u16::MAX as usize) as u16,
            timeout_ms: h
                .timeout_ms
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .min(u32::MAX as u64) as u32,
            host_float: true,
            share_device: h.share_device,
        }
    }
}
