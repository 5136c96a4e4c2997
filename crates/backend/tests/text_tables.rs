//! The text HEF's host tables converted from an ONNX text encoder (hailo/onnx_tables.rs) drive
//! the host half of the Hailo text path (hailo/text.rs: lookup, EOT padding, EOT row,
//! projection) to torch's text embeddings. The HEF is stood in for by `hailo_text_core.onnx`,
//! what the text HEF computes (positional embedding, transformer, final LayerNorm), exported by
//! tools/export-immich.py from the same tiny model.
#![cfg(feature = "onnx")]

use hailo_clip_backend::hailo::onnx_tables;
use hailo_clip_backend::hailo::text::TextTables;
use hailo_clip_backend::onnx::runtime::{environment, LibrarySource};
use ort::session::Session;
use ort::value::Tensor;
use std::path::PathBuf;

fn fixture(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/immich-tiny")
        .join(p)
}

#[test]
fn converted_tables_reproduce_torch_text_embeddings() {
    let d = tempfile::tempdir().unwrap();
    let npz = d.path().join("text_embeddings.npz");
    let (vocab, width, dim) = onnx_tables::convert(&fixture("textual/model.onnx"), &npz).unwrap();
    assert_eq!((vocab, width, dim), (49408, 16, 32));
    let tables = TextTables::load(&npz, width).unwrap();
    assert_eq!(tables.vocab(), vocab);
    assert_eq!(tables.out_dim(), dim);

    let lib = std::env::var_os("ORT_DYLIB_PATH").expect(
        "ORT_DYLIB_PATH is not set: export ORT_DYLIB_PATH=\"$(scripts/install-onnxruntime.sh)\"",
    );
    let _env = environment(&LibrarySource::resolve(Some(PathBuf::from(lib).as_path()))).unwrap();
    let mut core = Session::builder()
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .commit_from_file(fixture("hailo_text_core.onnx"))
        .unwrap();

    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap();
    let mut worst = 0f32;
    for t in reference["texts"].as_array().unwrap() {
        let mut ids = [0u32; clip::CONTEXT_LENGTH];
        for (slot, v) in ids.iter_mut().zip(t["ids"].as_array().unwrap()) {
            *slot = v.as_u64().unwrap() as u32;
        }
        let rows = tables.input_rows(&ids).unwrap();
        let input = Tensor::from_array(([1usize, clip::CONTEXT_LENGTH, width], rows)).unwrap();
        let outputs = core.run(ort::inputs!["token_embeddings" => input]).unwrap();
        let (_, out) = outputs[0].try_extract_tensor::<f32>().unwrap();
        let mut y = tables.pool_and_project(&ids, out);
        clip::l2_normalize(&mut y);
        let want: Vec<f32> = t["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let d = y
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst = worst.max(d);
    }
    eprintln!("hailo text host half on converted tables vs torch: max abs diff {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
}
