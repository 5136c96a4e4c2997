//! Images from one backend, texts from another (e.g. Hailo images with the ONNX text encoder,
//! as Hailo's own CLIP app runs text on the CPU).

use crate::{Backend, BackendError};
use clip::{ModelInfo, PreparedImage, TokenIds};
use std::collections::BTreeMap;

pub struct SplitBackend {
    image: Box<dyn Backend>,
    text: Box<dyn Backend>,
}

impl SplitBackend {
    pub fn new(image: Box<dyn Backend>, text: Box<dyn Backend>) -> Self {
        Self { image, text }
    }
}

impl Backend for SplitBackend {
    fn name(&self) -> String {
        format!("{}+{}", self.image.name(), self.text.name())
    }

    fn unload(&mut self) {
        self.image.unload();
        self.text.unload();
    }

    fn load(&mut self) -> Result<ModelInfo, BackendError> {
        let img = self.image.load()?;
        let txt = self.text.load()?;
        if img.embedding_dimension != txt.embedding_dimension {
            return Err(BackendError::Setup(format!(
                "image encoder ({}) gives {} dimensions but text encoder ({}) gives {}",
                self.image.name(),
                img.embedding_dimension,
                self.text.name(),
                txt.embedding_dimension
            )));
        }
        Ok(ModelInfo {
            max_text_batch: txt.max_text_batch,
            // Texts and their scoring are the text encoder's.
            tokenizer: txt.tokenizer.clone(),
            scoring: txt.scoring,
            ..img
        })
    }

    fn encode_images(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError> {
        self.image.encode_images(images)
    }

    fn encode_texts(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError> {
        self.text.encode_texts(texts)
    }

    fn versions(&self) -> BTreeMap<String, String> {
        let mut v = self.image.versions();
        for (k, val) in self.text.versions() {
            v.entry(k).or_insert(val);
        }
        v
    }
}
