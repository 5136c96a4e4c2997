//! `models fetch NAME` from a catalog whose URLs point at a loopback HTTP server serving the tiny
//! Immich-layout model (tests/fixtures/immich-tiny, tools/export-immich.py), then the real
//! service on the fetched files: embeddings and scores against torch's, and start-up errors for
//! broken model directories.
//!
//! Needs libonnxruntime.so (`export ORT_DYLIB_PATH="$(scripts/install-onnxruntime.sh)"`).
#![cfg(feature = "onnx")]

mod common;

use common::onnx::{library, start_ready};
use common::*;
use config::{BackendKind, ResizeMode, Settings};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

const NAME: &str = "immich-tiny";
/// The tiny SigLIP-architecture model (tools/export-immich.py --siglip).
const SIGLIP: &str = "immich-tiny-siglip";

fn fixture_dir() -> PathBuf {
    fixture(NAME)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("reference.json")).unwrap())
        .unwrap()
}

/// Serves `/<NAME>/<path>` from the fixture directory, with HTTP Range. A path in `flaky` is
/// cut off half-way the first time it is asked for (the connection drops).
fn serve(flaky: &[&str]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let flaky: Arc<Mutex<HashSet<String>>> =
        Arc::new(Mutex::new(flaky.iter().map(|s| s.to_string()).collect()));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let mut range: Option<u64> = None;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse().ok();
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let rel = path.trim_start_matches('/');
            let body = match rel.split_once('/') {
                Some((model, p)) if [NAME, SIGLIP].contains(&model) && !p.contains("..") => {
                    std::fs::read(fixture(model).join(p)).ok()
                }
                // A HEF header (magic, version 3) and filler: the simulated device supplies the model.
                _ if rel.starts_with("zoo/v5.1.1/") && rel.ends_with(".hef") => {
                    let mut b = vec![0x01, b'H', b'E', b'F', 0, 0, 0, 3];
                    b.extend((0..4000u32).map(|i| (i * 7 % 251) as u8));
                    Some(b)
                }
                _ => None,
            };
            let Some(body) = body else {
                let _ = write!(
                    s,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                );
                continue;
            };
            let cut = flaky.lock().unwrap().remove(rel);
            let start = range.unwrap_or(0).min(body.len() as u64) as usize;
            let status = if range.is_some() {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nConnection: close\r\n\r\n",
                body.len() - start,
                body.len().saturating_sub(1),
                body.len()
            );
            let send = if cut {
                &body[start..start + (body.len() - start) / 2]
            } else {
                &body[start..]
            };
            let _ = s.write_all(send);
            let _ = s.flush();
        }
    });
    format!("http://{addr}")
}

/// The built-in catalog's shape with this server's URLs and one model: the tiny fixture.
fn catalog(dir: &Path, base: &str, pin_visual: bool) -> PathBuf {
    let r = reference();
    let mut pins = serde_json::Map::new();
    if pin_visual {
        let f = &r["files"]["visual/model.onnx"];
        pins.insert(
            format!("{base}/{NAME}/visual/model.onnx"),
            json!({"bytes": f["bytes"], "sha256": f["sha256"]}),
        );
    }
    let c = json!({
        "hailo": {
            "url": format!("{base}/zoo/v{{zoo}}/{{hef}}.hef"),
            "zoo_for_hailort": {"5.1": "5.1.1", "5.2": "5.2.0"}
        },
        "onnx": {
            "url": format!("{base}/{{repo}}/{{path}}"),
            "files": ["config.json", "visual/model.onnx", "visual/preprocess_cfg.json",
                      "textual/model.onnx", "textual/tokenizer.json", "textual/tokenizer_config.json"]
        },
        "models": [{
            "name": NAME,
            "weights": "random (tools/export-immich.py)",
            "embedding_dimension": 32,
            "image_size": 32,
            "context_length": 77,
            "tokenizer": "clip-bpe",
            "scoring": {"kind": "softmax", "logit_scale": 100.0},
            "license": "MIT",
            "hailo": {"image_hef": "tiny_image_encoder", "text_hef": "tiny_text_encoder"},
            "onnx": {"repo": NAME}
        }],
        "pins": pins
    });
    let p = dir.join("catalog.json");
    std::fs::write(&p, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    p
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn cli(data: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_hailo-clip"))
        .args(args)
        .env("XDG_DATA_HOME", data)
        .env_remove("HAILO_CLIP_CONFIG")
        .env_remove("HAILO_CLIP_CATALOG")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn installed(data: &Path) -> PathBuf {
    data.join("hailo-clip/models").join(NAME)
}

fn settings(model_dir: &Path) -> Settings {
    let mut s = mock_settings();
    s.backend.kind = BackendKind::Onnx;
    s.clip.model = NAME.into();
    s.clip.resize_mode = ResizeMode::CenterCrop;
    s.backend.onnx.model_dir = Some(model_dir.to_path_buf());
    s.backend.onnx.library_path = Some(library());
    s.backend.onnx.threads = Some(1);
    s
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn max_abs(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn unit(v: &[f64]) -> Vec<f64> {
    let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    v.iter().map(|x| x / n).collect()
}

#[tokio::test]
async fn fetch_then_serve_matches_torch() {
    let base = serve(&[]);
    let d = tempfile::tempdir().unwrap();
    let cat = catalog(d.path(), &base, true);
    let cat = cat.to_str().unwrap();

    let list = cli(d.path(), &["models", "list", "--catalog", cat]);
    assert!(list.ok, "{}", list.stderr);
    assert!(
        list.stdout.contains("onnx [not installed]"),
        "{}",
        list.stdout
    );

    let r = cli(
        d.path(),
        &[
            "models",
            "fetch",
            NAME,
            "--backend",
            "onnx",
            "--catalog",
            cat,
            "--print-sha256",
        ],
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout.matches("downloaded").count(), 6, "{}", r.stdout);
    let refs = reference();
    for (path, f) in refs["files"].as_object().unwrap() {
        // Test-only files beside the model.
        if path.ends_with(".png") || path == "hailo_text_core.onnx" {
            continue;
        }
        let got = std::fs::read(installed(d.path()).join(path)).unwrap();
        assert_eq!(got.len() as u64, f["bytes"].as_u64().unwrap(), "{path}");
        // --print-sha256 prints every file's digest, pinned or not.
        assert!(
            r.stdout.contains(f["sha256"].as_str().unwrap()),
            "{path}: {}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("resize_mode: center_crop"),
        "{}",
        r.stdout
    );
    assert!(installed(d.path()).join("catalog-entry.json").is_file());
    let list = cli(d.path(), &["models", "list", "--catalog", cat]);
    assert!(list.stdout.contains("onnx [installed]"), "{}", list.stdout);
    let again = cli(d.path(), &["models", "fetch", NAME, "--catalog", cat]);
    assert!(again.ok, "{}", again.stderr);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);

    let srv = start_ready(settings(&installed(d.path()))).await;
    let (code, info) = srv.get("/info").await;
    assert_eq!(code, 200, "{info}");
    assert_eq!(info["embedding_dimension"], 32);
    assert_eq!(info["input_size"], json!([32, 32]));

    // Texts: same ids as open_clip, so the embeddings agree to float rounding.
    // The API refuses empty texts; the rest are sent.
    let with_text: Vec<&Value> = refs["texts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["text"] != "")
        .collect();
    let texts: Vec<&str> = with_text
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    let (code, t) = srv.post("/v1/embed/text", json!({ "texts": texts })).await;
    assert_eq!(code, 200, "{t}");
    let mut worst_text: f64 = 0.0;
    for (got, want) in t["result"].as_array().unwrap().iter().zip(&with_text) {
        let d = max_abs(&unit(&floats(got)), &floats(&want["embedding"]));
        worst_text = worst_text.max(d);
    }
    eprintln!("text embeddings over HTTP vs torch: max abs diff {worst_text:.2e}");
    assert!(worst_text < 1e-4, "{worst_text}");

    // An image at the model's own size: no resize on either side, same pixels.
    let exact = file_b64(&fixture_dir().join("exact.png"));
    let (code, e) = srv.post("/v1/embed/image", json!({"image": exact})).await;
    assert_eq!(code, 200, "{e}");
    let d_img = max_abs(
        &unit(&floats(&e["result"])),
        &floats(&refs["images"]["exact.png"]),
    );
    eprintln!("image embedding (32x32 PNG) over HTTP vs torch: max abs diff {d_img:.2e}");
    assert!(d_img < 1e-4, "{d_img}");

    // A larger photo: our decode + resize + crop against open_clip's preprocessing.
    let photo = file_b64(&fixture("images/astronaut.png"));
    let (code, p) = srv.post("/v1/embed/image", json!({"image": photo})).await;
    assert_eq!(code, 200, "{p}");
    let got = unit(&floats(&p["result"]));
    let want = floats(&refs["images"]["astronaut.png"]);
    let cos: f64 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
    eprintln!("astronaut.png end to end vs open_clip: cosine {cos:.6}");
    assert!(cos >= 0.9995, "{cos}");

    // Scores: softmax over 100 x cosine, against torch's.
    let cl = &refs["classify"];
    let labels: Vec<&str> = cl["labels"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let (code, c) = srv
        .post(
            "/v1/classify",
            json!({"image": exact, "labels": labels, "prompt_template": cl["template"]}),
        )
        .await;
    assert_eq!(code, 200, "{c}");
    let mut worst_score: f64 = 0.0;
    for x in c["result"].as_array().unwrap() {
        let want = cl["labels"][x["label"].as_str().unwrap()].as_f64().unwrap();
        worst_score = worst_score.max((x["score"].as_f64().unwrap() - want).abs());
    }
    eprintln!("classify scores vs torch: max abs diff {worst_score:.2e}");
    assert!(worst_score < 1e-4, "{worst_score}: {c}");
    srv.stop().await.unwrap();
}

#[test]
fn interrupted_download_resumes() {
    let base = serve(&[&format!("{NAME}/textual/model.onnx")]);
    let d = tempfile::tempdir().unwrap();
    let cat = catalog(d.path(), &base, false);
    let cat = cat.to_str().unwrap();
    let first = cli(d.path(), &["models", "fetch", NAME, "--catalog", cat]);
    assert!(!first.ok, "{}", first.stdout);
    assert!(
        first.stderr.contains("of 3277748 bytes"),
        "{}",
        first.stderr
    );
    assert!(first.stderr.contains("resumes"), "{}", first.stderr);
    let part = installed(d.path()).join("textual/.model.onnx.part");
    let half = std::fs::metadata(&part).unwrap().len();
    assert!(half > 0);
    assert!(!installed(d.path()).join("textual/model.onnx").exists());
    let second = cli(d.path(), &["models", "fetch", NAME, "--catalog", cat]);
    assert!(second.ok, "{}", second.stderr);
    assert!(!part.exists());
    let want = std::fs::read(fixture_dir().join("textual/model.onnx")).unwrap();
    let got = std::fs::read(installed(d.path()).join("textual/model.onnx")).unwrap();
    assert!(
        got == want,
        "resumed file differs ({} vs {} bytes)",
        got.len(),
        want.len()
    );
}

#[test]
fn pinned_sha_mismatch_keeps_nothing() {
    let base = serve(&[]);
    let d = tempfile::tempdir().unwrap();
    let cat = catalog(d.path(), &base, true);
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&cat).unwrap()).unwrap();
    let pin = c["pins"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    pin["sha256"] = json!("0".repeat(64));
    std::fs::write(&cat, c.to_string()).unwrap();
    let r = cli(
        d.path(),
        &["models", "fetch", NAME, "--catalog", cat.to_str().unwrap()],
    );
    assert!(!r.ok);
    assert!(r.stderr.contains("sha256 mismatch"), "{}", r.stderr);
    let visual = installed(d.path()).join("visual");
    let left: Vec<_> = std::fs::read_dir(&visual)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn unknown_names_and_missing_files_say_what() {
    let base = serve(&[]);
    let d = tempfile::tempdir().unwrap();
    let cat = catalog(d.path(), &base, false);
    let cat = cat.to_str().unwrap();
    let r = cli(d.path(), &["models", "fetch", "nope", "--catalog", cat]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("known models: immich-tiny"),
        "{}",
        r.stderr
    );
    let r = cli(
        d.path(),
        &[
            "models",
            "fetch",
            "clip-resnet-50x4",
            "--backend",
            "hailo",
            "--hailort",
            "4.23.0",
        ],
    );
    assert!(!r.ok);
    assert!(
        r.stderr
            .contains("no model zoo build is known for HailoRT 4.23.0"),
        "{}",
        r.stderr
    );
}

/// A copy of the fixture model, changed by `edit`, must fail at start-up naming the file.
async fn broken(edit: impl FnOnce(&Path), file: &str, want: &str) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join(NAME);
    for sub in ["", "visual", "textual"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for f in [
        "config.json",
        "visual/model.onnx",
        "visual/preprocess_cfg.json",
        "textual/model.onnx",
        "textual/tokenizer.json",
    ] {
        std::fs::copy(fixture_dir().join(f), dir.join(f)).unwrap();
    }
    edit(&dir);
    let mut s = settings(&dir);
    s.backend.warmup = true;
    let srv = start(s).await;
    wait_while_loading(
        &srv.client,
        &srv.url,
        600,
        std::time::Duration::from_millis(100),
    )
    .await;
    // With warm-up, a model that cannot load keeps the service from starting.
    let msg = srv
        .stop()
        .await
        .expect_err("start-up must fail")
        .to_string();
    assert!(msg.contains(file), "{file}: {msg}");
    assert!(msg.contains(want), "{want}: {msg}");
}

fn rewrite(path: &Path, f: impl FnOnce(String) -> String) {
    let t = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(t)).unwrap();
}

#[tokio::test]
async fn broken_model_directories_fail_at_start_naming_the_file() {
    broken(
        |d| std::fs::remove_file(d.join("textual/tokenizer.json")).unwrap(),
        "textual/tokenizer.json",
        "cannot read it",
    )
    .await;
    broken(
        |d| {
            rewrite(&d.join("visual/preprocess_cfg.json"), |t| {
                t.replace("\"fill_color\"", "\"fill_colour\"")
            })
        },
        "preprocess_cfg.json",
        "unknown field `fill_colour`",
    )
    .await;
    broken(
        |d| {
            rewrite(&d.join("visual/preprocess_cfg.json"), |t| {
                t.replacen("0.26862954", "0", 1)
            })
        },
        "preprocess_cfg.json",
        "must be positive",
    )
    .await;
    broken(
        |d| std::fs::write(d.join("textual/tokenizer.json"), "{\"model\": [").unwrap(),
        "textual/tokenizer.json",
        "not a tokenizer file",
    )
    .await;
    broken(
        |d| {
            rewrite(&d.join("config.json"), |t| {
                t.replacen("\"embed_dim\": 32", "\"embed_dim\": 48", 1)
            })
        },
        "config.json",
        "embed_dim 48",
    )
    .await;
    broken(
        |d| {
            rewrite(&d.join("visual/preprocess_cfg.json"), |t| {
                t.replace("shortest", "squash")
            })
        },
        "preprocess_cfg.json",
        "set clip.resize_mode: squash",
    )
    .await;
}

#[test]
fn the_fixture_is_what_the_reference_describes() {
    let refs = reference();
    for (path, f) in refs["files"].as_object().unwrap() {
        let mut b = Vec::new();
        std::fs::File::open(fixture_dir().join(path))
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        assert_eq!(b.len() as u64, f["bytes"].as_u64().unwrap(), "{path}");
    }
}

/// The complete Hailo set: image and text HEFs for the pinned HailoRT's zoo build, the ONNX text
/// encoder, and the text tables converted from it; then the hailo backend on the simulated device
/// loads exactly those files and encodes texts through the tables.
#[test]
fn hailo_fetch_converts_text_tables_and_the_simulated_device_uses_them() {
    use backend::hailo::sim::{text_function, SimControl, SimDevice, SimHef};
    use backend::hailo::text::TextTables;
    use backend::hailo::{HailoBackend, HailoOptions, TextFiles};
    use backend::Backend;
    use hailort_sys::{FormatType, InferDevice, QuantInfo};

    let base = serve(&[]);
    let d = tempfile::tempdir().unwrap();
    let cat = catalog(d.path(), &base, false);
    let r = cli(
        d.path(),
        &[
            "models",
            "fetch",
            NAME,
            "--backend",
            "hailo",
            "--hailort",
            "5.1.1",
            "--catalog",
        ],
    );
    assert!(!r.ok, "--catalog needs its file");
    let r = cli(
        d.path(),
        &[
            "models",
            "fetch",
            NAME,
            "--backend",
            "hailo",
            "--hailort",
            "5.1.1",
            "--catalog",
            cat.to_str().unwrap(),
        ],
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("converted"), "{}", r.stdout);
    assert!(r.stdout.contains("texts: on the chip"), "{}", r.stdout);
    let dir = installed(d.path());
    for f in [
        "image_encoder.hef",
        "text_encoder.hef",
        "textual/model.onnx",
        "text_embeddings.npz",
    ] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    assert!(
        !dir.join("visual/model.onnx").exists(),
        "the hailo set needs no ONNX image encoder"
    );

    let control = SimControl::default();
    let q = QuantInfo {
        zp: 0.0,
        scale: 1.0,
    };
    let hefs: std::collections::HashMap<String, SimHef> = [
        (
            "image_encoder.hef".to_string(),
            SimHef::image(32, 32, FormatType::Uint8, q),
        ),
        ("text_encoder.hef".to_string(), SimHef::text(16, q, q)),
    ]
    .into_iter()
    .collect();
    let opts = HailoOptions {
        model_name: NAME.into(),
        image_hef: dir.join("image_encoder.hef"),
        text: Some(TextFiles {
            hef: dir.join("text_encoder.hef"),
            embeddings: dir.join("text_embeddings.npz"),
        }),
        batch_size: 8,
        timeout_ms: 1000,
        host_float: true,
        share_device: false,
    };
    let c = control.clone();
    let mut b = HailoBackend::with_opener(
        opts,
        Box::new(move |group| {
            SimDevice::open_in(hefs.clone(), c.clone(), group)
                .map(|d| Box::new(d) as Box<dyn InferDevice>)
        }),
    );
    let info = b.load().unwrap();
    assert_eq!(info.embedding_dimension, 32);
    let tok = clip::tokenizer::ClipTokenizer::new();
    let ids = [
        tok.tokenize("a photo of a cat."),
        tok.tokenize("a photo of a dog."),
    ];
    let got = b.encode_texts(&ids).unwrap();
    let tables = TextTables::load(&dir.join("text_embeddings.npz"), 16).unwrap();
    for (g, t) in got.iter().zip(&ids) {
        let out = text_function(&tables.input_rows(t).unwrap(), 16);
        let mut want = tables.pool_and_project(t, &out);
        clip::l2_normalize(&mut want);
        let mut g = g.clone();
        clip::l2_normalize(&mut g);
        let d = g
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "{d}");
    }
}

/// SigLIP's shape end to end: a sentencepiece-style tokenizer.json run by the tokenizers library,
/// a 16-token non-causal text encoder pooled at the last position, and sigmoid scores with the
/// model's scale and bias (which the catalog carries and `models fetch` writes beside the files).
#[tokio::test]
async fn siglip_classifies_with_sigmoid_scores_matching_torch() {
    let refs: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(SIGLIP).join("reference.json")).unwrap(),
    )
    .unwrap();
    let base = serve(&[]);
    let d = tempfile::tempdir().unwrap();
    let cat = catalog(d.path(), &base, false);
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&cat).unwrap()).unwrap();
    let entry = json!({
        "name": SIGLIP,
        "weights": "random (tools/export-immich.py --siglip)",
        "embedding_dimension": 32,
        "image_size": 32,
        "context_length": 16,
        "tokenizer": "sentencepiece",
        "scoring": {"kind": "sigmoid", "logit_scale": refs["logit_scale"], "logit_bias": refs["logit_bias"]},
        "license": "MIT",
        "hailo": null,
        "onnx": {"repo": SIGLIP}
    });
    c["models"].as_array_mut().unwrap().push(entry);
    std::fs::write(&cat, c.to_string()).unwrap();
    let r = cli(
        d.path(),
        &[
            "models",
            "fetch",
            SIGLIP,
            "--catalog",
            cat.to_str().unwrap(),
        ],
    );
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
    let dir = d.path().join("hailo-clip/models").join(SIGLIP);

    // Without the trained scale and bias the model is refused, not scored wrong.
    let bare = tempfile::tempdir().unwrap();
    for f in [
        "config.json",
        "visual/model.onnx",
        "visual/preprocess_cfg.json",
        "textual/model.onnx",
        "textual/tokenizer.json",
        "textual/tokenizer_config.json",
    ] {
        let to = bare.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(dir.join(f), to).unwrap();
    }
    let e = start(settings(bare.path()))
        .await
        .stop()
        .await
        .expect_err("must not start")
        .to_string();
    assert!(
        e.contains("catalog-entry.json") && e.contains("logit_bias"),
        "{e}"
    );

    let mut s = settings(&dir);
    s.clip.model = SIGLIP.into();
    let srv = start_ready(s).await;
    let texts: Vec<&Value> = refs["texts"].as_array().unwrap().iter().collect();
    let body: Vec<&str> = texts.iter().map(|t| t["text"].as_str().unwrap()).collect();
    let (code, t) = srv.post("/v1/embed/text", json!({ "texts": body })).await;
    assert_eq!(code, 200, "{t}");
    let mut worst_text: f64 = 0.0;
    for (got, want) in t["result"].as_array().unwrap().iter().zip(&texts) {
        worst_text = worst_text.max(max_abs(&unit(&floats(got)), &floats(&want["embedding"])));
    }
    eprintln!("SigLIP text embeddings over HTTP vs torch: max abs diff {worst_text:.2e}");
    assert!(worst_text < 1e-4, "{worst_text}");

    let cl = &refs["classify"];
    let labels: Vec<&str> = cl["labels"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let exact = file_b64(&fixture(SIGLIP).join("exact.png"));
    let (code, c) = srv
        .post(
            "/v1/classify",
            json!({"image": exact, "labels": labels, "prompt_template": cl["template"]}),
        )
        .await;
    assert_eq!(code, 200, "{c}");
    let res = c["result"].as_array().unwrap();
    let sum: f64 = res.iter().map(|x| x["score"].as_f64().unwrap()).sum();
    assert!(
        (sum - 1.0).abs() > 0.05,
        "sigmoid scores do not sum to one: {sum}"
    );
    let mut worst_score: f64 = 0.0;
    for x in res {
        let want = cl["labels"][x["label"].as_str().unwrap()].as_f64().unwrap();
        worst_score = worst_score.max((x["score"].as_f64().unwrap() - want).abs());
    }
    eprintln!("SigLIP sigmoid scores vs torch: max abs diff {worst_score:.2e}");
    assert!(worst_score < 1e-4, "{worst_score}: {c}");
    srv.stop().await.unwrap();
}
