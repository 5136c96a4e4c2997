//! `hailo-clip models fetch` against a local HTTP server on 127.0.0.1: checked, atomic downloads.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

fn hef_bytes() -> Vec<u8> {
    let mut b = vec![0x01, b'H', b'E', b'F', 0, 0, 0, 3];
    b.extend((0..5000u32).map(|i| (i * 31 % 251) as u8));
    b
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Serves fixed routes until the test process ends; returns the base URL.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let hef = hef_bytes();
            let (status, body, declared): (&str, Vec<u8>, usize) = match path.as_str() {
                "/image.hef" => ("200 OK", hef.clone(), hef.len()),
                "/text.npz" => ("200 OK", b"PK\x03\x04rest-of-zip".to_vec(), 15),
                "/page.hef" => ("200 OK", b"<html>login</html>".to_vec(), 18),
                // Declares the full size, sends a tenth of it, then hangs up.
                "/truncated.hef" => ("200 OK", hef[..hef.len() / 10].to_vec(), hef.len()),
                _ => ("404 Not Found", b"not found".to_vec(), 9),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(&body);
            let _ = s.flush();
        }
    });
    format!("http://{addr}")
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn fetch(config: &Path, data: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_hailo-clip"))
        .args(["models", "fetch", "--config"])
        .arg(config)
        .args(extra)
        .env("XDG_DATA_HOME", data)
        .env_remove("HAILO_CLIP_CONFIG")
        .output()
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn config(dir: &Path, downloads: &[(String, &str, Option<String>)]) -> PathBuf {
    let mut y = String::from(
        "clip:\n  model: test-model\nbackend:\n  type: mock\n  hailo:\n    downloads:\n",
    );
    for (url, file, sha) in downloads {
        y.push_str(&format!("      - url: \"{url}\"\n        file: {file}\n"));
        if let Some(s) = sha {
            y.push_str(&format!("        sha256: \"{s}\"\n"));
        }
    }
    let p = dir.join("cfg.yaml");
    std::fs::write(&p, y).unwrap();
    p
}

fn models(data: &Path) -> PathBuf {
    data.join("hailo-clip/models/test-model")
}

/// Everything in the models directory, temp files included.
fn listing(data: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(models(data))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn downloads_verifies_and_is_idempotent() {
    let base = serve();
    let d = tempfile::tempdir().unwrap();
    let cfg = config(
        d.path(),
        &[
            (
                format!("{base}/image.hef"),
                "image_encoder.hef",
                Some(sha(&hef_bytes())),
            ),
            (format!("{base}/text.npz"), "text_embeddings.npz", None),
        ],
    );
    let r = fetch(&cfg, d.path(), &[]);
    assert!(r.ok, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("downloaded"), "{}", r.stdout);
    assert!(r.stdout.contains(&sha(&hef_bytes())), "{}", r.stdout);
    assert_eq!(
        std::fs::read(models(d.path()).join("image_encoder.hef")).unwrap(),
        hef_bytes()
    );
    assert_eq!(
        listing(d.path()),
        vec!["image_encoder.hef", "text_embeddings.npz"]
    );
    // No progress bar when stderr is not a terminal.
    assert!(!r.stderr.contains("MiB"), "{}", r.stderr);

    let again = fetch(&cfg, d.path(), &[]);
    assert!(again.ok);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert!(again.stdout.contains("present"), "{}", again.stdout);
    let forced = fetch(&cfg, d.path(), &["--force"]);
    assert!(forced.ok);
    assert_eq!(
        forced.stdout.matches("downloaded").count(),
        2,
        "{}",
        forced.stdout
    );
}

#[test]
fn sha_mismatch_is_an_error_and_nothing_is_kept() {
    let base = serve();
    let d = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let cfg = config(
        d.path(),
        &[(
            format!("{base}/image.hef"),
            "image_encoder.hef",
            Some(wrong),
        )],
    );
    let r = fetch(&cfg, d.path(), &[]);
    assert!(!r.ok);
    assert!(r.stderr.contains("sha256 mismatch"), "{}", r.stderr);
    assert!(r.stderr.contains(&sha(&hef_bytes())), "{}", r.stderr);
    assert!(listing(d.path()).is_empty(), "{:?}", listing(d.path()));
}

#[test]
fn http_404_truncated_and_non_hef_fail() {
    let base = serve();
    for (path, want) in [
        ("/nope.hef", "HTTP 404"),
        ("/truncated.hef", "5008 bytes"),
        ("/page.hef", "HTML page instead of image_encoder.hef"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let cfg = config(
            d.path(),
            &[(format!("{base}{path}"), "image_encoder.hef", None)],
        );
        let r = fetch(&cfg, d.path(), &[]);
        assert!(!r.ok, "{path}: {}", r.stdout);
        assert!(r.stderr.contains(want), "{path}: {}", r.stderr);
        // A cut-off transfer keeps its part for the next run to resume; a wrong file keeps nothing.
        let left = listing(d.path());
        if path == "/truncated.hef" {
            assert_eq!(left, vec![".image_encoder.hef.part"], "{path}");
        } else {
            assert!(left.is_empty(), "{path}: {left:?}");
        }
    }
}

#[test]
fn existing_file_is_replaced_only_by_a_good_download() {
    let base = serve();
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(models(d.path())).unwrap();
    let old = models(d.path()).join("image_encoder.hef");
    std::fs::write(&old, b"old").unwrap();
    // A failing forced download leaves the old file alone.
    let cfg = config(
        d.path(),
        &[(format!("{base}/truncated.hef"), "image_encoder.hef", None)],
    );
    assert!(!fetch(&cfg, d.path(), &["--force"]).ok);
    assert_eq!(std::fs::read(&old).unwrap(), b"old");
    // A configured sha256 that the present file does not match triggers a download.
    let cfg = config(
        d.path(),
        &[(
            format!("{base}/image.hef"),
            "image_encoder.hef",
            Some(sha(&hef_bytes())),
        )],
    );
    let r = fetch(&cfg, d.path(), &[]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(std::fs::read(&old).unwrap(), hef_bytes());
}

#[test]
fn nothing_configured_says_so() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), &[]);
    std::fs::write(&cfg, "backend:\n  type: mock\n").unwrap();
    let r = fetch(&cfg, d.path(), &[]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("no backend.hailo.downloads configured"),
        "{}",
        r.stderr
    );
}
