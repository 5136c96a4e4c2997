//! Any text -> 77 CLIP token ids: start-of-text first, end-of-text present, zero padding after.
#![no_main]

use clip::tokenizer::{eot_index, ClipTokenizer};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static TOKENIZER: LazyLock<ClipTokenizer> = LazyLock::new(ClipTokenizer::new);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ids = TOKENIZER.tokenize(&text);
    assert_eq!(ids[0], clip::SOT);
    let eot = eot_index(&ids);
    assert_eq!(ids[eot], clip::EOT);
    assert!(ids[eot + 1..].iter().all(|&x| x == 0));
});
