//! How far DCT-scaled JPEG decoding moves the model input and the embedding, against the
//! full-size decode through the same resize (bench/jpeg.sh runs it).
//!
//!   cargo run --release --example jpeg_quality -- MODEL_DIR FILE...
//!
//! Per file and resize mode: the embedding cosine on MODEL_DIR's ONNX model at its input size,
//! and the pixel differences (max, mean, in grey levels) of the 288x288 input the Hailo
//! RN50x4 model takes. One JSON line each; then the minimum cosine.

use backend::onnx::runtime::LibrarySource;
use backend::onnx::{OnnxBackend, OnnxOptions};
use backend::Backend;
use clip::preprocess::Preprocessor;
use clip::ResizeMode;
use std::path::PathBuf;

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("MODEL_DIR FILE..."));
    let files: Vec<String> = args.collect();
    let mut b = OnnxBackend::new(OnnxOptions::from_dir(&dir, LibrarySource::resolve(None), 2));
    let info = b.load().expect("model loads");
    let mut worst = 1.0f64;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for mode in [ResizeMode::Squash, ResizeMode::CenterCrop] {
            let model = Preprocessor {
                size: info.image_size,
                mode,
                max_pixels: 40_000_000,
                max_decoded_bytes: 128 << 20,
            };
            let e = b
                .encode_images(&[
                    model.prepare(&bytes).unwrap(),
                    model.prepare_full_decode(&bytes).unwrap(),
                ])
                .unwrap();
            let cos = cosine(&e[0], &e[1]);
            worst = worst.min(cos);
            let hailo = Preprocessor {
                size: (288, 288),
                ..model
            };
            let (s, full) = (
                hailo.prepare(&bytes).unwrap().rgb,
                hailo.prepare_full_decode(&bytes).unwrap().rgb,
            );
            let d: Vec<u8> = s.iter().zip(&full).map(|(a, b)| a.abs_diff(*b)).collect();
            let mean = d.iter().map(|&x| x as f64).sum::<f64>() / d.len() as f64;
            println!(
                "{{\"file\":{f:?},\"mode\":\"{mode:?}\",\"model\":{:?},\"cosine\":{cos:.6},\"px288_max\":{},\"px288_mean\":{mean:.3}}}",
                info.name,
                d.iter().max().unwrap()
            );
        }
    }
    println!("{{\"min_cosine\":{worst:.6}}}");
}
