//! CLIP BPE tokenization to fixed 77-token rows, truncated the way open_clip does
//! (the end-of-text token always survives as the last token).

use crate::{TokenIds, CONTEXT_LENGTH};
use instant_clip_tokenizer::{Token, Tokenizer};

mod clean;
pub mod hf;

/// The tokenizer a loaded model needs: CLIP's BPE (open_clip-exact, built in) or one from the
/// model's tokenizer.json.
#[derive(Debug, Clone, Default)]
pub enum TextTokenizer {
    #[default]
    ClipBpe,
    HuggingFace(std::sync::Arc<hf::HfTokenizer>),
}

impl TextTokenizer {
    /// The shortest text input, for a probe inference.
    pub fn probe(&self) -> TokenIds {
        match self {
            TextTokenizer::ClipBpe => crate::empty_text(),
            TextTokenizer::HuggingFace(t) => t.tokenize("").unwrap_or([0; CONTEXT_LENGTH]),
        }
    }
}

impl PartialEq for TextTokenizer {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (TextTokenizer::ClipBpe, TextTokenizer::ClipBpe) => true,
            (TextTokenizer::HuggingFace(a), TextTokenizer::HuggingFace(b)) => {
                std::sync::Arc::ptr_eq(a, b)
            }
            _ => false,
        }
    }
}

pub struct ClipTokenizer {
    inner: Tokenizer,
}

impl Default for ClipTokenizer {
    fn default() -> Self {
        Self::new()
    }
}

impl ClipTokenizer {
    pub fn new() -> Self {
        Self {
            inner: Tokenizer::new(),
        }
    }

    pub fn tokenize(&self, text: &str) -> TokenIds {
        let mut tokens: Vec<Token> = Vec::with_capacity(CONTEXT_LENGTH);
        tokens.push(self.inner.start_of_text());
        self.inner.encode(&clean::basic_clean(text), &mut tokens);
        tokens.truncate(CONTEXT_LENGTH - 1);
        tokens.push(self.inner.end_of_text());
        let mut ids = [0u32; CONTEXT_LENGTH];
        for (slot, t) in ids.iter_mut().zip(&tokens) {
            *slot = t.to_u16() as u32;
        }
        ids
    }
}

/// Position of the end-of-text token: CLIP pools the text transformer output there.
pub fn eot_index(ids: &TokenIds) -> usize {
    ids.iter()
        .enumerate()
        .max_by_key(|(_, &v)| v)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ids() {
        let t = ClipTokenizer::new();
        let ids = t.tokenize("a photo of a cat.");
        // open_clip.tokenize("a photo of a cat.")
        assert_eq!(&ids[..8], &[49406, 320, 1125, 539, 320, 2368, 269, 49407]);
        assert!(ids[8..].iter().all(|&x| x == 0));
        assert_eq!(eot_index(&ids), 7);
    }

    #[test]
    fn over_long_keeps_eot_last() {
        let t = ClipTokenizer::new();
        let ids = t.tokenize(&"cat ".repeat(200));
        assert_eq!(ids[0], 49406);
        assert_eq!(ids[CONTEXT_LENGTH - 1], 49407);
        assert_eq!(eot_index(&ids), CONTEXT_LENGTH - 1);
    }
}
