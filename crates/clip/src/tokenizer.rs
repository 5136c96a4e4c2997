//! CLIP BPE tokenization to fixed 77-token rows, truncated the way open_clip does
//! (the end-of-text token always survives as the last token).

use crate::{TokenIds, CONTEXT_LENGTH};
use instant_clip_tokenizer::{Token, Tokenizer};

mod clean;

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
        self.tokenize_counted(text).0
    }

    /// The row and how many tokens the text had before truncation (start and end of text
    /// included): more than `CONTEXT_LENGTH` means tokens were cut.
    pub fn tokenize_counted(&self, text: &str) -> (TokenIds, usize) {
        let mut tokens: Vec<Token> = Vec::with_capacity(CONTEXT_LENGTH);
        tokens.push(self.inner.start_of_text());
        self.inner.encode(&clean::basic_clean(text), &mut tokens);
        let untruncated = tokens.len() + 1;
        tokens.truncate(CONTEXT_LENGTH - 1);
        tokens.push(self.inner.end_of_text());
        let mut ids = [0u32; CONTEXT_LENGTH];
        for (slot, t) in ids.iter_mut().zip(&tokens) {
            *slot = t.to_u16() as u32;
        }
        (ids, untruncated)
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

    #[test]
    fn counts_before_truncation() {
        let t = ClipTokenizer::new();
        assert_eq!(t.tokenize_counted("a photo of a cat.").1, 8);
        // 75 words of one token each fill the row exactly; one more is cut.
        assert_eq!(t.tokenize_counted(&"cat ".repeat(75)).1, CONTEXT_LENGTH);
        let (ids, n) = t.tokenize_counted(&"cat ".repeat(76));
        assert_eq!(n, CONTEXT_LENGTH + 1);
        assert_eq!(ids, t.tokenize(&"cat ".repeat(75)));
    }
}
