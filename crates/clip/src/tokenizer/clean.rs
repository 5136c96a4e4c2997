//! open_clip's `basic_clean` before BPE: `ftfy.fix_text`, then `html.unescape` twice.
//!
//! ftfy is a large heuristic library; this is the part of its default `fix_text` that changes
//! prompts in practice, run to a fixed point as ftfy does: HTML entities (only when the text has
//! no `<`), UTF-8 mojibake read as windows-1252/latin-1, C1 controls, Latin ligatures, full/half
//! width forms, curly quotes, line breaks, terminal escapes, control characters, NFC.
//! Not reproduced: ftfy's badness scoring (we repair mojibake whenever the whole string re-decodes
//! as UTF-8), partial/lossy mojibake repair, and its all-caps entity variants (`&EACUTE;`).
//! tests/fixtures/tokenizer_parity.json (open_clip + ftfy 6.3.1) is the reference.

use unicode_normalization::UnicodeNormalization;

mod tables;
use tables::{CONTROL_RANGES, CP1252_80_9F, LEGACY_ENTITIES, LIGATURES, WIDTH_MAP};

pub fn basic_clean(text: &str) -> String {
    let once = html_unescape(&fix_text(text));
    html_unescape(&once)
}

/// The ftfy subset, repeated until nothing changes (ftfy's own loop).
pub fn fix_text(text: &str) -> String {
    let unescape = !text.contains('<');
    let mut cur = text.to_string();
    // ftfy loops until stable; every step only shortens or normalises, so this ends quickly.
    for _ in 0..16 {
        let mut t = if unescape {
            ftfy_unescape(&cur)
        } else {
            cur.clone()
        };
        if let Some(fixed) = fix_mojibake(&t) {
            t = fixed;
        }
        let t: String = t
            .chars()
            .flat_map(|c| {
                let c = if ('\u{80}'..='\u{9f}').contains(&c) {
                    CP1252_80_9F[c as usize - 0x80]
                } else {
                    c
                };
                match lookup(LIGATURES, c).or_else(|| lookup(WIDTH_MAP, c)) {
                    Some(s) => Replacement::Str(s),
                    None => Replacement::Char(uncurl(c)),
                }
            })
            .collect();
        let t = fix_line_breaks(&t);
        let t = remove_terminal_escapes(&t);
        let t: String = t.chars().filter(|&c| !is_control(c)).nfc().collect();
        if t == cur {
            break;
        }
        cur = t;
    }
    cur
}

enum Replacement {
    Char(char),
    Str(&'static str),
}

impl Iterator for Replacement {
    type Item = char;
    fn next(&mut self) -> Option<char> {
        match self {
            Replacement::Char(c) => {
                let c = *c;
                *self = Replacement::Str("");
                Some(c)
            }
            Replacement::Str(s) => {
                let c = s.chars().next()?;
                *s = &s[c.len_utf8()..];
                Some(c)
            }
        }
    }
}

fn lookup(table: &'static [(char, &'static str)], c: char) -> Option<&'static str> {
    table
        .binary_search_by_key(&c, |&(k, _)| k)
        .ok()
        .map(|i| table[i].1)
}

fn uncurl(c: char) -> char {
    match c {
        '\u{2bc}' | '\u{2018}'..='\u{201b}' => '\'',
        '\u{201c}'..='\u{201f}' => '"',
        c => c,
    }
}

fn is_control(c: char) -> bool {
    let c = c as u32;
    CONTROL_RANGES.iter().any(|&(a, b)| (a..=b).contains(&c))
}

fn fix_line_breaks(t: &str) -> String {
    if !t.contains(['\r', '\u{2028}', '\u{2029}', '\u{85}']) {
        return t.to_string();
    }
    t.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// ESC [ digits/semicolons letter, as ftfy's ANSI_RE.
fn remove_terminal_escapes(t: &str) -> String {
    if !t.contains('\u{1b}') {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find("\u{1b}[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        match after[params..].chars().next() {
            Some(c) if c.is_ascii_alphabetic() => rest = &after[params + 1..],
            _ => {
                out.push_str("\u{1b}[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// UTF-8 bytes that were decoded as windows-1252 (or latin-1): encode back and re-decode.
fn fix_mojibake(t: &str) -> Option<String> {
    if t.is_ascii() {
        return None;
    }
    let mut bytes = Vec::with_capacity(t.len());
    for c in t.chars() {
        let u = c as u32;
        let b = if u < 0x100 {
            u as u8
        } else {
            let i = CP1252_80_9F.iter().position(|&x| x == c)?;
            0x80 + i as u8
        };
        bytes.push(b);
    }
    let s = String::from_utf8(bytes).ok()?;
    (s != t).then_some(s)
}

/// ftfy's unescape_html: `&#?[0-9A-Za-z]{1,24};` only, so "&amp" without a semicolon is left
/// for Python's html.unescape below.
fn ftfy_unescape(t: &str) -> String {
    if !t.contains('&') {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let body_start = usize::from(after.starts_with('#'));
        let body_len = after[body_start..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let end = body_start + body_len;
        if (1..=24).contains(&body_len) && after[end..].starts_with(';') {
            let entity = &rest[i..i + 1 + end + 1];
            let decoded = html_unescape(entity);
            // Only a complete decode counts (ftfy: the semicolon must be consumed).
            if decoded != entity && !decoded.contains(';') {
                out.push_str(&decoded);
            } else {
                out.push_str(entity);
            }
            rest = &after[end + 1..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Python's `html.unescape`: HTML5 named references (semicolon-less only for the legacy names,
/// longest match), decimal/hex references with an optional semicolon and its invalid-codepoint rules.
pub fn html_unescape(t: &str) -> String {
    if !t.contains('&') {
        return t.to_string();
    }
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let consumed = if let Some(num) = after.strip_prefix('#') {
            numeric_ref(num, &mut out)
        } else {
            named_ref(after, &mut out)
        };
        match consumed {
            Some(n) => rest = &after[n..],
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `#[0-9]+;?` or `#[xX][0-9a-fA-F]+;?`; returns the bytes consumed after '&'.
fn numeric_ref(num: &str, out: &mut String) -> Option<usize> {
    let (hex, digits_at) = match num.as_bytes().first() {
        Some(b'x') | Some(b'X') => (true, 1),
        _ => (false, 0),
    };
    let digits = num[digits_at..]
        .bytes()
        .take_while(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count();
    if digits == 0 {
        return None;
    }
    let s = &num[digits_at..digits_at + digits];
    let radix = if hex { 16 } else { 10 };
    // Anything too long for u64 is far past U+10FFFF, as Python would find.
    let value = u64::from_str_radix(s, radix).unwrap_or(u64::MAX);
    let semi = usize::from(num[digits_at + digits..].starts_with(';'));
    match value {
        0 => out.push('\u{fffd}'),
        0x0d => out.push('\r'),
        0x80..=0x9f => out.push(CP1252_80_9F[value as usize - 0x80]),
        0xd800..=0xdfff => out.push('\u{fffd}'),
        v if v > 0x10ffff => out.push('\u{fffd}'),
        0x1..=0x8 | 0xb | 0xe..=0x1f | 0x7f | 0xfdd0..=0xfdef => {}
        v if v & 0xfffe == 0xfffe => {}
        v => out.push(char::from_u32(v as u32).unwrap_or('\u{fffd}')),
    }
    Some(1 + digits_at + digits + semi)
}

/// `[^\t\n\f <&#;]{1,32};?` looked up as Python does; returns the bytes consumed after '&'.
fn named_ref(after: &str, out: &mut String) -> Option<usize> {
    let mut len = 0;
    for (n, c) in after.char_indices().take(32) {
        if matches!(c, '\t' | '\n' | '\u{c}' | ' ' | '<' | '&' | '#' | ';') {
            break;
        }
        len = n + c.len_utf8();
    }
    if len == 0 {
        return None;
    }
    let name = &after[..len];
    if after[len..].starts_with(';') {
        let full = format!("&{name};");
        let decoded = html_escape::decode_html_entities(&full);
        if decoded != full {
            out.push_str(&decoded);
            return Some(len + 1);
        }
    } else if let Some(v) = legacy(name) {
        out.push_str(v);
        return Some(len);
    }
    // The longest legacy name that prefixes it, at least two characters ("&ampx" -> "&x").
    let cut: Vec<usize> = name
        .char_indices()
        .map(|(i, _)| i)
        .filter(|&i| i >= 2)
        .collect();
    for &i in cut.iter().rev() {
        if let Some(v) = legacy(&name[..i]) {
            out.push_str(v);
            return Some(i);
        }
    }
    None
}

fn legacy(name: &str) -> Option<&'static str> {
    LEGACY_ENTITIES
        .binary_search_by_key(&name, |&(k, _)| k)
        .ok()
        .map(|i| LEGACY_ENTITIES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_html_unescape_cases() {
        assert_eq!(html_unescape("a &amp b"), "a & b");
        assert_eq!(html_unescape("&amp;amp;"), "&amp;");
        assert_eq!(html_unescape("&ampx"), "&x");
        assert_eq!(html_unescape("&notit;"), "\u{ac}it;");
        assert_eq!(html_unescape("&#39;s &#x27 &#128;"), "'s ' \u{20ac}");
        assert_eq!(html_unescape("&bogus; & &;"), "&bogus; & &;");
        assert_eq!(html_unescape("&eacute;t&eacute"), "\u{e9}t\u{e9}");
        assert_eq!(html_unescape("&#0;&#xD800;&#1;"), "\u{fffd}\u{fffd}");
    }

    #[test]
    fn ftfy_subset_cases() {
        assert_eq!(fix_text("cafÃ©"), "caf\u{e9}");
        assert_eq!(fix_text("â€œquotedâ€\u{9d}"), "\"quoted\"");
        assert_eq!(fix_text("it\u{2019}s"), "it's");
        assert_eq!(fix_text("\u{fb01}sh"), "fish");
        assert_eq!(fix_text("\u{ff21}\u{ff22}\u{3000}x"), "AB x");
        assert_eq!(fix_text("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(fix_text("\0null\u{1}control"), "nullcontrol");
        assert_eq!(fix_text("\u{1b}[36mblue\u{1b}[0m"), "blue");
        assert_eq!(fix_text("na\u{ef}ve caf\u{e9}"), "na\u{ef}ve caf\u{e9}");
        assert_eq!(fix_text("&lt;b&gt; <i>&amp;</i>"), "&lt;b&gt; <i>&amp;</i>");
        assert_eq!(fix_text("&amp;amp;"), "&");
    }
}
