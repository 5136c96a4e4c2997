//! `hailo-clip models fetch`: downloads the configured `backend.hailo.downloads` into the models
//! directory. Each file lands atomically (temp file + rename) and only after its checks pass:
//! non-empty, Content-Length matched, format magic (HEF, npz), sha256 when configured.

use backend::hailo::files::format_problem;
use config::{ModelDownload, Settings};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Downloaded {
        path: PathBuf,
        bytes: u64,
        sha256: String,
    },
    /// Already there and matching the configured sha256.
    UpToDate { path: PathBuf },
    /// Already there; nothing to compare it with (no sha256 configured).
    Present { path: PathBuf },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Downloaded {
                path,
                bytes,
                sha256,
            } => {
                write!(
                    f,
                    "downloaded {} ({bytes} bytes, sha256 {sha256})",
                    path.display()
                )
            }
            Outcome::UpToDate { path } => {
                write!(f, "up to date {} (sha256 matches)", path.display())
            }
            Outcome::Present { path } => write!(
                f,
                "present {} (no sha256 configured; --force downloads it again)",
                path.display()
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Download even when the file is already there.
    pub force: bool,
    /// Show progress (only on a terminal).
    pub progress: bool,
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Downloads every configured file; stops at the first failure (files already fetched stay).
pub fn fetch_all(settings: &Settings, opts: &FetchOptions) -> Result<Vec<Outcome>, String> {
    let downloads = &settings.backend.hailo.downloads;
    if downloads.is_empty() {
        return Err(
            "no backend.hailo.downloads configured: add {url, file, sha256} entries to the config"
                .into(),
        );
    }
    let dir = settings.models_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    downloads.iter().map(|d| fetch_one(d, &dir, opts)).collect()
}

pub fn fetch_one(d: &ModelDownload, dir: &Path, opts: &FetchOptions) -> Result<Outcome, String> {
    let dest = dir.join(&d.file);
    if dest.exists() && !opts.force {
        match &d.sha256 {
            Some(want) => {
                let have = sha256_file(&dest)
                    .map_err(|e| format!("cannot read {}: {e}", dest.display()))?;
                if have.eq_ignore_ascii_case(want) {
                    return Ok(Outcome::UpToDate { path: dest });
                }
                // A different file is there: fetch the configured one over it.
            }
            None => return Ok(Outcome::Present { path: dest }),
        }
    }
    let tmp = dir.join(format!(".{}.part-{}", d.file, std::process::id()));
    let result = download(d, &tmp, opts);
    match result {
        Ok((bytes, sha256)) => {
            std::fs::rename(&tmp, &dest).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot move the download to {}: {e}", dest.display())
            })?;
            Ok(Outcome::Downloaded {
                path: dest,
                bytes,
                sha256,
            })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn download(d: &ModelDownload, tmp: &Path, opts: &FetchOptions) -> Result<(u64, String), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    let resp = match agent.get(&d.url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            return Err(format!("{}: HTTP {code} {}", d.url, r.status_text()));
        }
        Err(e) => return Err(format!("{}: {e}", d.url)),
    };
    let expected: Option<u64> = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let mut reader = resp.into_reader();
    let mut file =
        std::fs::File::create(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::with_capacity(16);
    let mut got: u64 = 0;
    let show = opts.progress && std::io::stderr().is_terminal();
    let mut last = Instant::now();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(format!(
                    "{}: connection failed after {got}{} bytes: {e}",
                    d.url,
                    expected.map(|t| format!(" of {t}")).unwrap_or_default()
                ))
            }
        };
        if head.len() < 16 {
            let take = (16 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        got += n as u64;
        if show && last.elapsed() > Duration::from_millis(200) {
            last = Instant::now();
            progress(&d.file, got, expected);
        }
    }
    if show {
        progress(&d.file, got, expected);
        eprintln!();
    }
    if let Some(t) = expected {
        if got != t {
            return Err(format!(
                "{}: truncated download: got {got} of {t} bytes",
                d.url
            ));
        }
    }
    if got == 0 {
        return Err(format!("{}: empty response", d.url));
    }
    if let Some(p) = format_problem(&d.file, &head) {
        return Err(format!("{}: {p}", d.url));
    }
    let sha = hex(&hasher.finalize());
    if let Some(want) = &d.sha256 {
        if !sha.eq_ignore_ascii_case(want) {
            return Err(format!(
                "{}: sha256 mismatch for {}: expected {want}, got {sha}; file not kept",
                d.url, d.file
            ));
        }
    }
    file.sync_all()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    Ok((got, sha))
}

fn progress(file: &str, got: u64, total: Option<u64>) {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    match total {
        Some(t) if t > 0 => eprint!(
            "\r{file}: {:.1} / {:.1} MiB ({:.0}%)",
            mib(got),
            mib(t),
            got as f64 * 100.0 / t as f64
        ),
        _ => eprint!("\r{file}: {:.1} MiB", mib(got)),
    }
    let _ = std::io::stderr().flush();
}
