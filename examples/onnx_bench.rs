//! Latency of the `onnx` backend on a model directory (image.onnx, text.onnx, model.json), in the
//! same JSON shape as bench/onnx_python.py so bench/onnx.sh can put them side by side.
//!
//!   cargo run --release --example onnx_bench -- MODEL_DIR [--threads N] [--runs N] [--warmup N]
//!
//! Times `Backend::encode_images` (including our u8 -> normalised float conversion) and
//! `Backend::encode_texts`, the calls the device thread makes; decoding, resizing and tokenising
//! are not timed, as in the Python script.

use backend::onnx::runtime::{self, LibrarySource};
use backend::onnx::{default_threads, OnnxBackend, OnnxOptions};
use backend::Backend;
use clip::{PreparedImage, TokenIds, CONTEXT_LENGTH};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

const PROMPT_IDS: [u32; 8] = [49406, 320, 1125, 539, 320, 2368, 269, 49407];

struct Args {
    dir: PathBuf,
    threads: usize,
    runs: usize,
    warmup: usize,
    image_batches: Vec<usize>,
    text_batches: Vec<usize>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        dir: PathBuf::new(),
        threads: default_threads(),
        runs: 10,
        warmup: 2,
        image_batches: vec![1, 8],
        text_batches: vec![1, 16],
    };
    let list = |s: String| -> Result<Vec<usize>, String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().map_err(|e| format!("{x}: {e}")))
            .collect()
    };
    while let Some(arg) = it.next() {
        let mut val = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--threads" => a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--runs" => a.runs = val()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--warmup" => a.warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--image-batches" => a.image_batches = list(val()?)?,
            "--text-batches" => a.text_batches = list(val()?)?,
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => a.dir = PathBuf::from(s),
        }
    }
    if a.dir.as_os_str().is_empty() {
        return Err("usage: onnx_bench MODEL_DIR [--threads N] [--runs N] [--warmup N] [--image-batches 1,8] [--text-batches 1,16]".into());
    }
    Ok(a)
}

fn rss_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn time_runs(mut f: impl FnMut(), warmup: usize, runs: usize, batch: usize) -> Value {
    for _ in 0..warmup {
        f();
    }
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    let p90 = ms[((0.9 * (n - 1) as f64).round() as usize).min(n - 1)];
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "batch": batch, "runs": runs,
        "median_ms": r3(median), "per_item_ms": r3(median / batch as f64),
        "min_ms": r3(ms[0]), "p90_ms": r3(p90), "max_ms": r3(ms[n - 1]),
    })
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rss_start = rss_kib("VmRSS:");
    let library = LibrarySource::resolve(None);
    let t = Instant::now();
    if let Err(e) = runtime::environment(&library) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let library_ms = t.elapsed().as_secs_f64() * 1000.0;

    let mut backend = OnnxBackend::new(OnnxOptions::from_dir(&a.dir, library, a.threads));
    let t = Instant::now();
    let info = match backend.load() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let load_ms = t.elapsed().as_secs_f64() * 1000.0;
    let rss_loaded = rss_kib("VmRSS:");

    let (w, h) = info.image_size;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 56) as u8
    };
    let mut image = json!({});
    for &b in &a.image_batches {
        let imgs: Vec<PreparedImage> = (0..b)
            .map(|_| PreparedImage {
                width: w,
                height: h,
                rgb: (0..w as usize * h as usize * 3).map(|_| next()).collect(),
            })
            .collect();
        image[format!("b{b}")] = time_runs(
            || {
                backend.encode_images(&imgs).expect("encode_images");
            },
            a.warmup,
            a.runs,
            b,
        );
    }
    let mut ids: TokenIds = [0; CONTEXT_LENGTH];
    ids[..PROMPT_IDS.len()].copy_from_slice(&PROMPT_IDS);
    let mut text = json!({});
    for &b in &a.text_batches {
        let batch = vec![ids; b];
        text[format!("b{b}")] = time_runs(
            || {
                backend.encode_texts(&batch).expect("encode_texts");
            },
            a.warmup,
            a.runs,
            b,
        );
    }
    let out = json!({
        "runtime": "rust-ort",
        "onnxruntime_version": backend.versions().get("onnxruntime"),
        "model_dir": a.dir,
        "model": info.name,
        "image_size": w,
        "embedding_dimension": info.embedding_dimension,
        "threads": a.threads,
        "warmup": a.warmup,
        "load_ms": {"library": (library_ms * 10.0).round() / 10.0, "total": (load_ms * 10.0).round() / 10.0},
        "image": image,
        "text": text,
        "rss_bytes": {"start": rss_start * 1024, "after_load": rss_loaded * 1024, "peak": rss_kib("VmHWM:") * 1024},
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
