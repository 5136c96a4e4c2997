//! Tokenizers that are not CLIP's BPE (SigLIP's sentencepiece, XLM-RoBERTa), from a Hugging Face
//! `tokenizer.json`, as open_clip's `HFTokenizer` and Immich run them: the text is cleaned
//! (open_clip's `basic_clean`, plus `canonicalize` for SigLIP), encoded with the file's special
//! tokens, truncated and padded to the model's context length with its pad token.

use crate::{TokenIds, CONTEXT_LENGTH};
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

pub struct HfTokenizer {
    inner: Tokenizer,
    context_length: usize,
    canonicalize: bool,
    /// Names the file the tokenizer came from (for messages and the embedding cache's key).
    pub source: String,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("source", &self.source)
            .field("context_length", &self.context_length)
            .field("canonicalize", &self.canonicalize)
            .finish()
    }
}

impl HfTokenizer {
    /// `json` is the tokenizer.json text; `pad_token` names its padding token (Immich's
    /// tokenizer_config.json `pad_token`).
    pub fn from_json(
        source: &str,
        json: &str,
        context_length: usize,
        pad_token: &str,
        canonicalize: bool,
    ) -> Result<Self, String> {
        if context_length == 0 || context_length > CONTEXT_LENGTH {
            return Err(format!(
                "context length {context_length} is outside 1..={CONTEXT_LENGTH}"
            ));
        }
        let mut inner: Tokenizer = json
            .parse()
            .map_err(|e| format!("not a tokenizer file the tokenizers library reads: {e}"))?;
        let pad_id = inner
            .token_to_id(pad_token)
            .ok_or_else(|| format!("the pad token {pad_token:?} is not in the vocabulary"))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(context_length),
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token: pad_token.to_string(),
        }));
        inner
            .with_truncation(Some(TruncationParams {
                max_length: context_length,
                ..Default::default()
            }))
            .map_err(|e| format!("cannot truncate to {context_length} tokens: {e}"))?;
        Ok(Self {
            inner,
            context_length,
            canonicalize,
            source: source.to_string(),
        })
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    /// The first `context_length` slots hold the ids; the rest stay 0 and are not sent.
    pub fn tokenize(&self, text: &str) -> Result<TokenIds, String> {
        // Cut as for CLIP BPE: a tokenizer never needs more than the first words of a text.
        let mut t = super::clean::basic_clean(&super::usable_prefix(text))
            .trim()
            .to_string();
        if self.canonicalize {
            t = canonicalize(&t);
        }
        let enc = self
            .inner
            .encode(t, true)
            .map_err(|e| format!("tokenizer {}: {e}", self.source))?;
        let mut ids = [0u32; CONTEXT_LENGTH];
        for (slot, &id) in ids.iter_mut().zip(enc.get_ids()) {
            *slot = id;
        }
        Ok(ids)
    }
}

/// open_clip's `canonicalize_text`: underscores to spaces, ASCII punctuation removed, lower case,
/// whitespace collapsed.
pub fn canonicalize(text: &str) -> String {
    let t: String = text
        .replace('_', " ")
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect::<String>()
        .to_lowercase();
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word-level tokenizer: enough to check padding, truncation and the special tokens.
    const WORDS: &str = r#"{
      "version": "1.0", "truncation": null, "padding": null,
      "added_tokens": [{"id": 1, "content": "</s>", "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": false, "special": true}],
      "normalizer": null,
      "pre_tokenizer": {"type": "Whitespace"},
      "post_processor": {"type": "TemplateProcessing",
        "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}],
        "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}},
      "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "</s>": 1, "a": 2, "photo": 3, "of": 4, "cat": 5},
                "unk_token": "<unk>"}
    }"#;

    #[test]
    fn pads_truncates_and_adds_eos() {
        let t = HfTokenizer::from_json("words", WORDS, 6, "</s>", true).unwrap();
        let ids = t.tokenize("A photo of a CAT.").unwrap();
        assert_eq!(&ids[..6], &[2, 3, 4, 2, 5, 1]);
        assert!(ids[6..].iter().all(|&x| x == 0));
        let short = t.tokenize("cat").unwrap();
        assert_eq!(&short[..6], &[5, 1, 1, 1, 1, 1]);
        let long = t.tokenize(&"cat ".repeat(20)).unwrap();
        assert_eq!(long[5], 1, "truncation keeps the end-of-text token");
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert!(HfTokenizer::from_json("w", WORDS, 6, "<pad>", false)
            .unwrap_err()
            .contains("pad token"));
        assert!(HfTokenizer::from_json("w", "{", 6, "</s>", false)
            .unwrap_err()
            .contains("not a tokenizer file"));
        assert!(HfTokenizer::from_json("w", WORDS, 78, "</s>", false).is_err());
    }

    #[test]
    fn canonical_text() {
        assert_eq!(canonicalize("A  Photo_of, a CAT!"), "a photo of a cat");
    }
}
