//! The text HEF's host tables (token embedding + text projection) taken from the matching ONNX
//! text encoder, e.g. Immich's `textual/model.onnx` of the same weights: Hailo publishes the text
//! HEFs but not these tables. No Python or torch: the two weight tensors are read straight out of
//! the ONNX protobuf by name (`token_embedding.weight`, `text_projection`, as torch.onnx exports
//! an open_clip model's parameters) and written in the model zoo's .npz layout.

use super::npz::{self, Array};
use super::text::{EMBEDDINGS_KEY, PROJECTION_KEY};
use std::path::Path;

const TOKEN_EMBEDDING: &str = "token_embedding.weight";
const TEXT_PROJECTION: &str = "text_projection";

/// (token embedding `[vocab, width]`, text projection `[width, embed_dim]`) from an ONNX file.
pub fn read(path: &Path) -> Result<(Array, Array), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    from_model_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Converts `onnx` into the .npz the hailo backend reads (`text_embeddings` = token embedding
/// transposed, dim x vocab; `projection_layer` = text projection transposed, out x dim).
pub fn convert(onnx: &Path, npz_out: &Path) -> Result<(usize, usize, usize), String> {
    let (emb, proj) = read(onnx)?;
    let (vocab, width) = (emb.shape[0], emb.shape[1]);
    let out = proj.shape[1];
    let emb_t = transpose(&emb.data, vocab, width);
    let proj_t = transpose(&proj.data, width, out);
    let tmp = npz_out.with_extension("npz.part");
    npz::write_npz(
        &tmp,
        &[
            (EMBEDDINGS_KEY, &[width, vocab], &emb_t),
            (PROJECTION_KEY, &[out, width], &proj_t),
        ],
    )
    .and_then(|_| std::fs::rename(&tmp, npz_out))
    .map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", npz_out.display())
    })?;
    Ok((vocab, width, out))
}

fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = data[r * cols + c];
        }
    }
    t
}

pub fn from_model_bytes(b: &[u8]) -> Result<(Array, Array), String> {
    let mut emb = None;
    let mut proj = None;
    let mut names = Vec::new();
    // ModelProto.graph = 7; GraphProto.initializer = 5.
    for (field, value) in Fields(b) {
        let Value::Bytes(graph) = value? else {
            continue;
        };
        if field != 7 {
            continue;
        }
        for (f, v) in Fields(graph) {
            let Value::Bytes(t) = v? else { continue };
            if f != 5 {
                continue;
            }
            let tensor = Tensor::parse(t)?;
            if tensor.name.ends_with(TOKEN_EMBEDDING) {
                emb = Some(tensor.array()?);
            } else if tensor.name.ends_with(TEXT_PROJECTION) {
                proj = Some(tensor.array()?);
            } else {
                names.push(tensor.name);
            }
        }
    }
    let missing = |what: &str| {
        format!(
            "no initializer named *{what}; not an open_clip text encoder export? (it has {} others)",
            names.len()
        )
    };
    let emb = emb.ok_or_else(|| missing(TOKEN_EMBEDDING))?;
    let proj = proj.ok_or_else(|| missing(TEXT_PROJECTION))?;
    if emb.shape.len() != 2 || proj.shape.len() != 2 || proj.shape[0] != emb.shape[1] {
        return Err(format!(
            "token embedding {:?} and text projection {:?} do not fit together ([vocab, width], [width, dim])",
            emb.shape, proj.shape
        ));
    }
    Ok((emb, proj))
}

struct Tensor<'a> {
    name: String,
    dims: Vec<usize>,
    data_type: u64,
    raw: Option<&'a [u8]>,
    floats: Vec<f32>,
    external: bool,
}

impl<'a> Tensor<'a> {
    /// TensorProto: dims = 1, data_type = 2, float_data = 4, name = 8, raw_data = 9,
    /// data_location = 14 (1 = external).
    fn parse(b: &'a [u8]) -> Result<Self, String> {
        let mut t = Tensor {
            name: String::new(),
            dims: Vec::new(),
            data_type: 0,
            raw: None,
            floats: Vec::new(),
            external: false,
        };
        for (f, v) in Fields(b) {
            match (f, v?) {
                (1, Value::Varint(d)) => t.dims.push(d as usize),
                (1, Value::Bytes(packed)) => {
                    let mut p = packed;
                    while !p.is_empty() {
                        let (d, rest) = varint(p)?;
                        t.dims.push(d as usize);
                        p = rest;
                    }
                }
                (2, Value::Varint(d)) => t.data_type = d,
                (4, Value::Bytes(packed)) => t.floats.extend(
                    packed
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                ),
                (4, Value::Fixed32(x)) => t.floats.push(f32::from_bits(x)),
                (8, Value::Bytes(s)) => t.name = String::from_utf8_lossy(s).into_owned(),
                (9, Value::Bytes(r)) => t.raw = Some(r),
                (14, Value::Varint(1)) => t.external = true,
                _ => {}
            }
        }
        Ok(t)
    }

    fn array(&self) -> Result<Array, String> {
        if self.external {
            return Err(format!(
                "{} is stored outside the .onnx file (external data), which is not read",
                self.name
            ));
        }
        if self.data_type != 1 {
            return Err(format!(
                "{} has ONNX data type {}, not float32",
                self.name, self.data_type
            ));
        }
        let n: usize = self.dims.iter().product();
        let data: Vec<f32> = match self.raw {
            Some(r) => r
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            None => self.floats.clone(),
        };
        if data.len() != n {
            return Err(format!(
                "{} holds {} values for shape {:?}",
                self.name,
                data.len(),
                self.dims
            ));
        }
        Ok(Array {
            shape: self.dims.clone(),
            data,
        })
    }
}

enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

fn varint(b: &[u8]) -> Result<(u64, &[u8]), String> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= ((byte & 0x7f) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, &b[i + 1..]));
        }
    }
    Err("truncated protobuf varint".into())
}

/// The fields of one protobuf message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, Result<Value<'a>, String>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let (key, rest) = match varint(self.0) {
            Ok(x) => x,
            Err(e) => {
                self.0 = &[];
                return Some((0, Err(e)));
            }
        };
        let field = key >> 3;
        let cut = |s: &mut Self, n: usize, rest: &'a [u8]| -> Result<&'a [u8], String> {
            if rest.len() < n {
                s.0 = &[];
                return Err("truncated protobuf field (not an ONNX model?)".into());
            }
            s.0 = &rest[n..];
            Ok(&rest[..n])
        };
        let value = match key & 7 {
            0 => match varint(rest) {
                Ok((v, r)) => {
                    self.0 = r;
                    Ok(Value::Varint(v))
                }
                Err(e) => {
                    self.0 = &[];
                    Err(e)
                }
            },
            1 => cut(self, 8, rest).map(|_| Value::Fixed64),
            2 => match varint(rest) {
                Ok((n, r)) => cut(self, n as usize, r).map(Value::Bytes),
                Err(e) => {
                    self.0 = &[];
                    Err(e)
                }
            },
            5 => cut(self, 4, rest)
                .map(|b| Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            w => {
                self.0 = &[];
                Err(format!(
                    "protobuf wire type {w} is not valid here (not an ONNX model?)"
                ))
            }
        };
        Some((field, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(field: u64, wire: u64) -> Vec<u8> {
        enc((field << 3) | wire)
    }

    fn enc(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u64, b: &[u8]) -> Vec<u8> {
        let mut out = key(field, 2);
        out.extend(enc(b.len() as u64));
        out.extend_from_slice(b);
        out
    }

    fn tensor(name: &str, dims: &[u64], data: &[f32]) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            t.extend(key(1, 0));
            t.extend(enc(d));
        }
        t.extend(key(2, 0));
        t.extend(enc(1));
        t.extend(bytes_field(8, name.as_bytes()));
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        t.extend(bytes_field(9, &raw));
        t
    }

    #[test]
    fn finds_the_two_tables_by_name() {
        let emb: Vec<f32> = (0..6).map(|i| i as f32).collect();
        let proj: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0];
        let mut graph = bytes_field(5, &tensor("other", &[2], &[9.0, 9.0]));
        graph.extend(bytes_field(
            5,
            &tensor("token_embedding.weight", &[3, 2], &emb),
        ));
        graph.extend(bytes_field(5, &tensor("text_projection", &[2, 2], &proj)));
        let mut model = key(1, 0);
        model.extend(enc(8)); // ir_version
        model.extend(bytes_field(7, &graph));
        let (e, p) = from_model_bytes(&model).unwrap();
        assert_eq!(e.shape, vec![3, 2]);
        assert_eq!(e.data, emb);
        assert_eq!(p.data, proj);
        assert_eq!(transpose(&e.data, 3, 2), vec![0., 2., 4., 1., 3., 5.]);
    }

    #[test]
    fn says_what_is_missing() {
        let graph = bytes_field(5, &tensor("token_embedding.weight", &[3, 2], &[0.0; 6]));
        let model = bytes_field(7, &graph);
        let e = from_model_bytes(&model).unwrap_err();
        assert!(e.contains("*text_projection"), "{e}");
        assert!(from_model_bytes(&[0x3a, 0x05, 1]).is_err());
    }
}
