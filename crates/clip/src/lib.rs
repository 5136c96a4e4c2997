//! CLIP's own vocabulary, shared by every layer above: token ids and their special values, the
//! tokenizer, the prepared image, what a loaded model is, image preprocessing and zero-shot
//! scoring. Pure computation: no I/O, no threads, no other layer of the service.

pub mod jpeg;
mod png_chunks;
pub mod preprocess;
pub mod scoring;
pub mod tokenizer;

use serde::{Deserialize, Serialize};

/// Number of tokens in a CLIP text input (SOT + text + EOT, zero padded).
pub const CONTEXT_LENGTH: usize = 77;
/// Start-of-text token id of CLIP's BPE vocabulary.
pub const SOT: u32 = 49406;
/// End-of-text token id; CLIP pools the text transformer's output at its position.
pub const EOT: u32 = 49407;

/// Names the tokenizer's output: embeddings kept on disk are reused only under the same one.
/// Change it whenever token ids for some text change.
pub const TOKENIZER_VERSION: &str = "openai-clip-bpe-49408+open_clip-clean/1";

/// Token ids for one text, `CONTEXT_LENGTH` long, zero padded after the end-of-text token.
pub type TokenIds = [u32; CONTEXT_LENGTH];

/// The shortest text input: SOT, EOT, padding (a probe inference uses it).
pub fn empty_text() -> TokenIds {
    let mut ids = [0u32; CONTEXT_LENGTH];
    ids[0] = SOT;
    ids[1] = EOT;
    ids
}

/// An image already decoded, oriented and resized to the backend's input size:
/// packed RGB, row-major HWC, `width * height * 3` bytes.
#[derive(Debug, Clone)]
pub struct PreparedImage {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// What the layers above need to know about a loaded model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub embedding_dimension: usize,
    /// (width, height) the image encoder takes.
    pub image_size: (u32, u32),
    /// The most images the image encoder takes in one call (the model's own limit; the device
    /// thread's batches are the smaller of this and `batching.max_batch_size`).
    pub max_image_batch: usize,
    /// The most texts the text encoder takes in one call.
    pub max_text_batch: usize,
    /// How texts become token ids for this model's text encoder.
    #[serde(skip)]
    pub tokenizer: tokenizer::TextTokenizer,
    /// How /v1/classify turns similarities into scores.
    pub scoring: scoring::Scoring,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Straight resize to the input size, as Hailo's model zoo evaluates CLIP.
    Squash,
    /// Resize the short side then crop the centre, as OpenAI CLIP does.
    CenterCrop,
}

/// Scales `v` to unit length (a zero vector stays zero), so cosine becomes a dot product.
pub fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
