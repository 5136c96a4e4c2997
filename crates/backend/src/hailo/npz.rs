//! Reads float arrays out of a NumPy `.npz` (a zip of `.npy` files), enough for the model zoo's
//! CLIP text files (`np.savez(text_embeddings=..., pos_embeddings=..., projection_layer=...)`).

use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    /// C order (row-major), converted to f32.
    pub data: Vec<f32>,
}

pub fn read_npz(path: &Path, keys: &[&str]) -> Result<Vec<Array>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("{} is not an .npz (zip) file: {e}", path.display()))?;
    let available: Vec<String> = zip.file_names().map(str::to_string).collect();
    keys.iter()
        .map(|key| {
            let member = format!("{key}.npy");
            let mut f = zip.by_name(&member).map_err(|_| {
                format!(
                    "{} has no array {key:?} (it has: {})",
                    path.display(),
                    available
                        .iter()
                        .map(|n| n.trim_end_matches(".npy"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let mut bytes = Vec::with_capacity(f.size() as usize);
            f.read_to_end(&mut bytes)
                .map_err(|e| format!("{}: reading {member}: {e}", path.display()))?;
            parse_npy(&bytes).map_err(|e| format!("{}: {member}: {e}", path.display()))
        })
        .collect()
}

/// Parses one `.npy` (format 1.0-3.0) of little-endian f4/f8/f2, C or Fortran order.
pub fn parse_npy(b: &[u8]) -> Result<Array, String> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err("not a .npy array".into());
    }
    let (hlen, start) = match b[6] {
        1 => (u16::from_le_bytes([b[8], b[9]]) as usize, 10),
        2 | 3 if b.len() >= 12 => (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = b.get(start..start + hlen).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "non-text .npy header")?;
    let descr = dict_value(header, "descr").ok_or("no descr in .npy header")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or("no fortran_order")? == "True";
    let shape_text = dict_value(header, "shape").ok_or("no shape in .npy header")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<Result<_, _>>()?;
    let n: usize = shape.iter().product();
    let body = &b[start + hlen..];
    let (width, conv): (usize, fn(&[u8]) -> f32) = match descr {
        "<f4" => (4, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        "<f8" => (8, |c| f64::from_le_bytes(c.try_into().unwrap()) as f32),
        "<f2" => (2, |c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))),
        other => return Err(format!("dtype {other} is not a little-endian float")),
    };
    if body.len() < n * width {
        return Err(format!(
            "truncated: shape {shape:?} needs {} bytes, file has {}",
            n * width,
            body.len()
        ));
    }
    let mut data: Vec<f32> = body[..n * width].chunks_exact(width).map(conv).collect();
    if fortran && shape.len() > 1 {
        data = fortran_to_c(&data, &shape);
    }
    Ok(Array { shape, data })
}

/// The text after `'key':` up to the next top-level comma in a Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = &header[at + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

fn fortran_to_c(data: &[f32], shape: &[usize]) -> Vec<f32> {
    let n = data.len();
    let mut out = vec![0.0; n];
    let mut idx = vec![0usize; shape.len()];
    for &v in data.iter() {
        // Fortran order: first index fastest.
        let mut c = 0;
        for (d, &i) in idx.iter().enumerate() {
            c = c * shape[d] + i;
        }
        out[c] = v;
        for (d, i) in idx.iter_mut().enumerate() {
            *i += 1;
            if *i < shape[d] {
                break;
            }
            *i = 0;
        }
    }
    out
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Writes an f32 `.npy` (format 1.0, C order); for tests and fixtures.
pub fn write_npy(shape: &[usize], data: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Header plus magic/version/length (10 bytes) padded to 64 with spaces and a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes an uncompressed `.npz` like `np.savez`; for tests and fixtures.
pub fn write_npz(path: &Path, arrays: &[(&str, &[usize], &[f32])]) -> std::io::Result<()> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, shape, data) in arrays {
        zip.start_file(format!("{name}.npy"), opts)?;
        zip.write_all(&write_npy(shape, data))?;
    }
    zip.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_npz() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.npz");
        let a: Vec<f32> = (0..6).map(|i| i as f32 * 0.5).collect();
        write_npz(&p, &[("a", &[2, 3], &a), ("b", &[3], &[1.0, 2.0, 3.0])]).unwrap();
        let got = read_npz(&p, &["b", "a"]).unwrap();
        assert_eq!(got[0].shape, vec![3]);
        assert_eq!(got[0].data, vec![1.0, 2.0, 3.0]);
        assert_eq!(got[1].shape, vec![2, 3]);
        assert_eq!(got[1].data, a);
        let e = read_npz(&p, &["projection_layer"]).unwrap_err();
        assert!(e.contains("has no array \"projection_layer\""), "{e}");
        assert!(e.contains("a, b") || e.contains("b, a"), "{e}");
    }

    #[test]
    fn numpy_written_header_fortran_and_f8() {
        // Header as numpy 1.x writes it for np.asfortranarray(np.arange(6, dtype='<f8').reshape(2, 3)).
        let mut h = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }".to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        // Fortran order of [[0,1,2],[3,4,5]] is 0,3,1,4,2,5.
        for v in [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(&b).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn rejects_truncated_and_ints() {
        let good = write_npy(&[4], &[1.0, 2.0, 3.0, 4.0]);
        assert!(parse_npy(&good[..good.len() - 1])
            .unwrap_err()
            .contains("truncated"));
        let mut ints = good.clone();
        let at = ints.windows(3).position(|w| w == b"<f4").unwrap();
        ints[at + 1] = b'i';
        assert!(parse_npy(&ints).unwrap_err().contains("<i4"));
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
    }
}
