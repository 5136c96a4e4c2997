//! One image at a time, base64 text to the model's input (decode_base64 + prepare), as the
//! service does per image: the scaled JPEG path and the full-size decode. bench/jpeg.sh runs it
//! next to Pillow on the same files.
//!
//!     cargo run --release -p hailo-clip-clip --example jpeg_bench -- [--size 288] [--reps 15] FILE...
//!
//! Prints one JSON line per file and path: {"file","path","ms_median","ms_min","reps"}.

use base64::Engine as _;
use hailo_clip_clip::preprocess::{decode_base64, Preprocessor};
use hailo_clip_clip::ResizeMode;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let (mut size, mut reps, mut files) = (288u32, 15usize, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => size = args.next().and_then(|v| v.parse().ok()).expect("--size N"),
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            _ => files.push(a),
        }
    }
    let pre = Preprocessor {
        size: (size, size),
        mode: ResizeMode::Squash,
        max_pixels: 40_000_000,
        max_decoded_bytes: 128 << 20,
    };
    for f in &files {
        let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(f).unwrap());
        for (path, scaled) in [("scaled", true), ("full", false)] {
            let run = || {
                let bytes = decode_base64(&b64).unwrap();
                let p = if scaled {
                    pre.prepare(&bytes)
                } else {
                    pre.prepare_full_decode(&bytes)
                };
                std::hint::black_box(p.unwrap());
            };
            run();
            let mut ms: Vec<f64> = (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    run();
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            println!(
                "{{\"file\":{f:?},\"path\":\"{path}\",\"ms_median\":{:.3},\"ms_min\":{:.3},\"reps\":{reps}}}",
                ms[reps / 2],
                ms[0]
            );
        }
    }
}
