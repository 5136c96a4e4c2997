//! The host half of the text encoder HEF, as Hailo's model zoo runs it: the HEF takes token
//! embeddings (positional embedding and transformer are inside), the host looks the tokens up,
//! pads after the end-of-text token with its embedding, then takes the end-of-text row of the
//! output and multiplies it by the text projection.

use super::npz::{self, Array};
use clip::tokenizer::eot_index;
use clip::{TokenIds, CONTEXT_LENGTH};
use std::path::Path;

/// Array names in the model zoo's CLIP `.npz` (`create_coco_xtd10_resnet_tfrecord.py`):
/// `text_embeddings` = token_embedding.weight.T (dim x vocab) and
/// `projection_layer` = text_projection.T (out x dim).
pub const EMBEDDINGS_KEY: &str = "text_embeddings";
pub const PROJECTION_KEY: &str = "projection_layer";

#[derive(Debug, Clone)]
pub struct TextTables {
    vocab: usize,
    dim: usize,
    /// vocab x dim, row-major.
    table: Vec<f32>,
    out_dim: usize,
    /// out_dim x dim, row-major: y = projection · x, i.e. x @ text_projection.
    projection: Vec<f32>,
}

impl TextTables {
    pub fn load(path: &Path, dim: usize) -> Result<Self, String> {
        let mut arrays = npz::read_npz(path, &[EMBEDDINGS_KEY, PROJECTION_KEY])?;
        let proj = arrays.pop().expect("two arrays");
        let emb = arrays.pop().expect("two arrays");
        Self::from_arrays(emb, proj, dim).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// `dim` is the text HEF's feature count, which fixes which axis of the table is the vocabulary.
    pub fn from_arrays(emb: Array, proj: Array, dim: usize) -> Result<Self, String> {
        let (vocab, table) = match emb.shape[..] {
            // Model zoo layout (dim x vocab): transpose once so a token is one contiguous row.
            [d, v] if d == dim && v != dim => {
                let mut t = vec![0.0; v * d];
                for (i, chunk) in emb.data.chunks_exact(v).enumerate() {
                    for (tok, &x) in chunk.iter().enumerate() {
                        t[tok * d + i] = x;
                    }
                }
                (v, t)
            }
            [v, d] if d == dim => (v, emb.data),
            _ => {
                return Err(format!(
                    "{EMBEDDINGS_KEY} has shape {:?}; the text HEF takes {dim} features per token",
                    emb.shape
                ))
            }
        };
        let out_dim = match proj.shape[..] {
            [o, d] if d == dim => o,
            _ => {
                return Err(format!(
                    "{PROJECTION_KEY} has shape {:?}; expected (out, {dim})",
                    proj.shape
                ))
            }
        };
        Ok(Self {
            vocab,
            dim,
            table,
            out_dim,
            projection: proj.data,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    pub fn vocab(&self) -> usize {
        self.vocab
    }

    fn row(&self, token: u32) -> Result<&[f32], String> {
        let t = token as usize;
        if t >= self.vocab {
            return Err(format!(
                "token id {token} is outside the vocabulary ({})",
                self.vocab
            ));
        }
        Ok(&self.table[t * self.dim..(t + 1) * self.dim])
    }

    /// CONTEXT_LENGTH x dim HEF input for one text: token embeddings up to and including the
    /// end-of-text token, then the end-of-text embedding repeated (the model zoo's padding).
    pub fn input_rows(&self, ids: &TokenIds) -> Result<Vec<f32>, String> {
        let eot = eot_index(ids);
        let mut out = Vec::with_capacity(CONTEXT_LENGTH * self.dim);
        for (pos, &id) in ids.iter().enumerate() {
            let tok = if pos > eot { ids[eot] } else { id };
            out.extend_from_slice(self.row(tok)?);
        }
        Ok(out)
    }

    /// The end-of-text row of the HEF output, projected.
    pub fn pool_and_project(&self, ids: &TokenIds, output: &[f32]) -> Vec<f32> {
        let eot = eot_index(ids);
        let x = &output[eot * self.dim..(eot + 1) * self.dim];
        self.projection
            .chunks_exact(self.dim)
            .map(|p| p.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> TextTables {
        // vocab 5, dim 2, model zoo layout (dim x vocab): token t embeds as (t, 10 t).
        let emb = Array {
            shape: vec![2, 5],
            data: vec![0., 1., 2., 3., 4., 0., 10., 20., 30., 40.],
        };
        // projection_layer = text_projection.T; text_projection = [[1, 2, 0], [0, 1, 1]] (dim 2 -> 3).
        let proj = Array {
            shape: vec![3, 2],
            data: vec![1., 0., 2., 1., 0., 1.],
        };
        TextTables::from_arrays(emb, proj, 2).unwrap()
    }

    fn ids(tokens: &[u32]) -> TokenIds {
        let mut a = [0u32; CONTEXT_LENGTH];
        a[..tokens.len()].copy_from_slice(tokens);
        a
    }

    #[test]
    fn zoo_layout_is_transposed_and_eot_pads() {
        let t = tables();
        assert_eq!((t.vocab(), t.dim(), t.out_dim()), (5, 2, 3));
        let x = t.input_rows(&ids(&[3, 1, 4])).unwrap(); // EOT = 4 (largest id) at position 2
        assert_eq!(x.len(), CONTEXT_LENGTH * 2);
        assert_eq!(&x[..6], &[3., 30., 1., 10., 4., 40.]);
        assert!(
            x[6..].chunks(2).all(|r| r == [4., 40.]),
            "padding is the EOT embedding"
        );
    }

    #[test]
    fn takes_eot_row_and_projects() {
        let t = tables();
        let mut out = vec![0.0; CONTEXT_LENGTH * 2];
        out[2 * 2] = 1.0; // row 2 = (1, 3)
        out[2 * 2 + 1] = 3.0;
        out[3 * 2] = 100.0; // a later row must be ignored
                            // (1, 3) @ [[1, 2, 0], [0, 1, 1]] = (1, 5, 3)
        assert_eq!(t.pool_and_project(&ids(&[3, 1, 4]), &out), vec![1., 5., 3.]);
    }

    #[test]
    fn vocab_major_layout_and_errors() {
        let emb = Array {
            shape: vec![3, 2],
            data: vec![0., 0., 1., 1., 2., 2.],
        };
        let proj = Array {
            shape: vec![2, 2],
            data: vec![1., 0., 0., 1.],
        };
        let t = TextTables::from_arrays(emb.clone(), proj.clone(), 2).unwrap();
        assert_eq!(t.vocab(), 3);
        assert!(t
            .input_rows(&ids(&[1, 7]))
            .unwrap_err()
            .contains("outside the vocabulary"));
        assert!(TextTables::from_arrays(emb, proj, 4)
            .unwrap_err()
            .contains("4 features"));
    }
}
