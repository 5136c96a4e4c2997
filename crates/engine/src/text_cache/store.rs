//! The text cache on disk: one file per model, rewritten whole and atomically (temp file,
//! fsync, rename), so a crash mid-write leaves the previous file. Everything read back is
//! checked (magic, format version, model identity, tokenizer version, checksum, shape) and a
//! file that fails any check is discarded, never trusted.

use super::Embedding;
use sha2::{Digest, Sha256};
use std::path::Path;

const MAGIC: &[u8; 8] = b"HCTEXT01";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {0}")]
    Io(#[from] std::io::Error),
    #[error("not a hailo-clip text cache (wrong magic)")]
    Magic,
    #[error("written for another model or tokenizer (identity {found}, expected {expected})")]
    Foreign { found: String, expected: String },
    #[error("damaged: {0}")]
    Damaged(&'static str),
}

/// The identity a file must carry to be used: the model's and the tokenizer's.
pub fn identity(model_identity: &str) -> String {
    format!("{model_identity}/{}", clip::TOKENIZER_VERSION)
}

pub fn encode(identity: &str, entries: &[(String, Embedding)]) -> Vec<u8> {
    let dim = entries.first().map_or(0, |(_, e)| e.len());
    let mut body = Vec::with_capacity(entries.len() * (dim * 4 + 40) + identity.len() + 16);
    put_bytes(&mut body, identity.as_bytes());
    body.extend_from_slice(&(dim as u32).to_le_bytes());
    let same: Vec<&(String, Embedding)> = entries.iter().filter(|(_, e)| e.len() == dim).collect();
    body.extend_from_slice(&(same.len() as u32).to_le_bytes());
    for (prompt, e) in same {
        put_bytes(&mut body, prompt.as_bytes());
        for x in e.iter() {
            body.extend_from_slice(&x.to_le_bytes());
        }
    }
    let mut out = Vec::with_capacity(body.len() + 40);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(&Sha256::digest(&body));
    out
}

pub fn decode(bytes: &[u8], expected: &str) -> Result<Vec<(String, Embedding)>, StoreError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(StoreError::Magic)?;
    if rest.len() < 32 {
        return Err(StoreError::Damaged("truncated"));
    }
    let (body, sum) = rest.split_at(rest.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(StoreError::Damaged(
            "checksum mismatch (truncated or altered)",
        ));
    }
    let mut r = Reader(body);
    let found =
        String::from_utf8(r.bytes()?.to_vec()).map_err(|_| StoreError::Damaged("identity"))?;
    if found != expected {
        return Err(StoreError::Foreign {
            found,
            expected: expected.to_string(),
        });
    }
    let dim = r.u32()? as usize;
    let count = r.u32()? as usize;
    let mut out = Vec::with_capacity(count.min(body.len() / 4 + 1));
    for _ in 0..count {
        let prompt =
            String::from_utf8(r.bytes()?.to_vec()).map_err(|_| StoreError::Damaged("prompt"))?;
        let raw = r.take(dim * 4)?;
        let e: Embedding = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.push((prompt, e));
    }
    if !r.0.is_empty() {
        return Err(StoreError::Damaged("trailing bytes"));
    }
    Ok(out)
}

pub fn read(path: &Path, expected: &str) -> Result<Vec<(String, Embedding)>, StoreError> {
    decode(&std::fs::read(path)?, expected)
}

pub fn write(path: &Path, identity: &str, entries: &[(String, Embedding)]) -> std::io::Result<()> {
    config::write_atomic(path, &encode(identity, entries))
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(StoreError::Damaged("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<(String, Embedding)> {
        vec![
            ("a photo of a cat.".into(), vec![0.6, 0.8].into()),
            ("a photo of a dog.".into(), vec![1.0, 0.0].into()),
        ]
    }

    #[test]
    fn round_trip() {
        let b = encode("m/t", &entries());
        let back = decode(&b, "m/t").unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, "a photo of a cat.");
        assert_eq!(&back[1].1[..], &[1.0, 0.0]);
    }

    #[test]
    fn damaged_foreign_and_wrong_files_are_refused() {
        let b = encode("m/t", &entries());
        assert!(matches!(
            decode(&b[..b.len() / 2], "m/t"),
            Err(StoreError::Damaged(_))
        ));
        assert!(matches!(
            decode(b"GIF89a...........", "m/t"),
            Err(StoreError::Magic)
        ));
        assert!(matches!(
            decode(&b, "other/t"),
            Err(StoreError::Foreign { .. })
        ));
        let mut flipped = b.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        assert!(matches!(
            decode(&flipped, "m/t"),
            Err(StoreError::Damaged(_))
        ));
    }
}
