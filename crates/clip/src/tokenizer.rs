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
        self.tokenize_counted(text).0
    }

    /// The row and how many tokens the text had before truncation (start and end of text
    /// included): more than `CONTEXT_LENGTH` means tokens were cut.
    pub fn tokenize_counted(&self, text: &str) -> (TokenIds, usize) {
        let mut tokens: Vec<Token> = Vec::with_capacity(CONTEXT_LENGTH);
        tokens.push(self.inner.start_of_text());
        self.inner
            .encode(&clean::basic_clean(&usable_prefix(text)), &mut tokens);
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

/// Longest word kept: BPE's cost grows with the square of a word's length (a one-million-letter
/// word took 10 s), and no real word comes near this.
const WORD_BYTES: usize = 4096;

/// The part of `text` that 77 tokens can use: every word gives at least one token, so words past
/// the first few dozen are cut before any cleaning or BPE (twice the context, since cleaning can
/// drop a word that is all control characters), and each word to [`WORD_BYTES`]. Texts whose
/// words are shorter than that tokenize exactly as open_clip does.
fn usable_prefix(text: &str) -> std::borrow::Cow<'_, str> {
    const WORDS: usize = 2 * CONTEXT_LENGTH;
    let mut words = text.split_whitespace();
    let short = words.by_ref().take(WORDS).all(|w| w.len() <= WORD_BYTES);
    if short && words.next().is_none() {
        return text.into();
    }
    let mut out = String::new();
    for w in text.split_whitespace().take(WORDS) {
        let mut end = w.len().min(WORD_BYTES);
        while !w.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&w[..end]);
        out.push(' ');
    }
    out.into()
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
    fn huge_inputs_cost_what_77_tokens_need() {
        let t = ClipTokenizer::new();
        // A one-million-letter word and a million words: both cut before BPE.
        let word = format!("a photo of {}", "a".repeat(1_000_000));
        let ids = t.tokenize(&word);
        assert_eq!(ids[CONTEXT_LENGTH - 1], 49407);
        let many = "cat ".repeat(1_000_000);
        assert_eq!(t.tokenize(&many), t.tokenize(&"cat ".repeat(200)));
        // Short texts are untouched.
        assert!(matches!(
            usable_prefix("a photo of a cat."),
            std::borrow::Cow::Borrowed(_)
        ));
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
