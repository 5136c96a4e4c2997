//! Model files the Hailo backend reads, recognised by their first bytes before anything loads
//! them: HEFs and the model zoo's .npz tables.

use std::io::Read;
use std::path::Path;

/// HEF files start with this big-endian magic ("\x01HEF"; HailoRT hef_internal.hpp HEADER_MAGIC).
pub const HEF_MAGIC: [u8; 4] = [0x01, b'H', b'E', b'F'];
/// Highest HEF header version HailoRT 5.x reads.
pub const HEF_MAX_VERSION: u32 = 3;
pub const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// Checks the first bytes of a model file by its extension; None when the format is fine or unknown.
pub fn format_problem(name: &str, head: &[u8]) -> Option<String> {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "hef" => {
            if head.len() < 8 || head[..4] != HEF_MAGIC {
                return Some(format!(
                    "{name} is not a HEF (no \\x01HEF magic; first bytes {:02x?})",
                    &head[..head.len().min(8)]
                ));
            }
            let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            (version > HEF_MAX_VERSION).then(|| {
                format!("{name} has HEF header version {version}; HailoRT 5.x reads up to {HEF_MAX_VERSION}")
            })
        }
        "npz" | "zip" => (head.len() < 4 || head[..4] != ZIP_MAGIC)
            .then(|| format!("{name} is not a .npz (zip) file")),
        _ => None,
    }
}

/// Reads the head of a file and checks it like a download.
pub fn check_file(path: &Path) -> Result<u64, String> {
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len == 0 {
        return Err(format!("{} is empty", path.display()));
    }
    let mut head = [0u8; 16];
    let n = f
        .read(&mut head)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let name = path.display().to_string();
    match format_problem(&name, &head[..n]) {
        Some(p) => Err(p),
        None => Ok(len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hef_and_npz_magic() {
        let mut hef = HEF_MAGIC.to_vec();
        hef.extend_from_slice(&3u32.to_be_bytes());
        assert_eq!(format_problem("a.hef", &hef), None);
        let mut v9 = HEF_MAGIC.to_vec();
        v9.extend_from_slice(&9u32.to_be_bytes());
        assert!(format_problem("a.hef", &v9).unwrap().contains("version 9"));
        assert!(format_problem("a.hef", b"<html>404</html>")
            .unwrap()
            .contains("not a HEF"));
        assert!(format_problem("t.npz", b"PK\x03\x04....").is_none());
        assert!(format_problem("t.npz", b"\x93NUMPY").is_some());
        assert!(format_problem("model.onnx", b"anything").is_none());
    }
}
