//! `hailo-clip models list|fetch`: a catalog model's files (or the configured
//! `backend.hailo.downloads`) into the models directory. Each file lands atomically (part file +
//! rename) and only after its checks pass: non-empty, Content-Length matched, not an HTML page,
//! format magic (HEF, npz), sha256 when pinned. Disk space is checked first; an interrupted
//! download is resumed by the next run (HTTP Range).

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

/// One file to download: where from, where to, what it must be.
#[derive(Debug, Clone)]
pub struct Job {
    pub url: String,
    pub dest: PathBuf,
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
}

impl Job {
    fn label(&self) -> String {
        self.dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

pub fn fetch_one(d: &ModelDownload, dir: &Path, opts: &FetchOptions) -> Result<Outcome, String> {
    fetch_job(
        &Job {
            url: d.url.clone(),
            dest: dir.join(&d.file),
            sha256: d.sha256.clone(),
            bytes: None,
        },
        opts,
    )
}

/// Downloads `job.dest` unless it is already there (and matches the pinned sha256, if any).
/// An interrupted download leaves `.<name>.part` beside it, which the next run resumes.
pub fn fetch_job(job: &Job, opts: &FetchOptions) -> Result<Outcome, String> {
    let dest = job.dest.clone();
    if dest.exists() && !opts.force {
        match &job.sha256 {
            Some(want) => {
                let have = sha256_file(&dest)
                    .map_err(|e| format!("cannot read {}: {e}", dest.display()))?;
                if have.eq_ignore_ascii_case(want) {
                    return Ok(Outcome::UpToDate { path: dest });
                }
                // A different file is there: fetch the pinned one over it.
            }
            None => return Ok(Outcome::Present { path: dest }),
        }
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(".{}.part", job.label()));
    if opts.force {
        let _ = std::fs::remove_file(&tmp);
    }
    match download(job, &tmp, opts) {
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
        Err(Failure::Resumable(e)) => Err(format!(
            "{e}; the part downloaded so far is kept in {} and the next run resumes it",
            tmp.display()
        )),
        Err(Failure::Bad(e)) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

enum Failure {
    /// The connection broke: what arrived is fine and can be continued.
    Resumable(String),
    /// What arrived is wrong: nothing is kept.
    Bad(String),
}

/// Free bytes for an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

fn looks_like_html(head: &[u8]) -> bool {
    let s = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    s.starts_with("<!doctype") || s.starts_with("<html") || s.starts_with("<head")
}

fn download(job: &Job, tmp: &Path, opts: &FetchOptions) -> Result<(u64, String), Failure> {
    let bad = Failure::Bad;
    let url = &job.url;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .build();
    // What an earlier, interrupted run left.
    let have = std::fs::metadata(tmp).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.set("Range", &format!("bytes={have}-"));
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(416, _)) if have > 0 => {
            // The part is not a prefix the server recognises: start over.
            let _ = std::fs::remove_file(tmp);
            return download(job, tmp, opts);
        }
        Err(ureq::Error::Status(code, r)) => {
            return Err(bad(format!("{url}: HTTP {code} {}", r.status_text())));
        }
        Err(e) => {
            return Err(Failure::Resumable(format!(
                "{url}: {e} (no network, or the host is unreachable?)"
            )))
        }
    };
    let resumed = have > 0 && resp.status() == 206;
    let start = if resumed { have } else { 0 };
    let length: Option<u64> = resp
        .header("Content-Length")
        .and_then(|v| v.trim().parse().ok());
    let expected = length.map(|l| l + start).or(job.bytes);
    if let (Some(e), Some(pinned)) = (expected, job.bytes) {
        if e != pinned {
            return Err(bad(format!(
                "{url}: the server offers {e} bytes but the catalog pins {pinned}"
            )));
        }
    }
    let is_json = job.dest.extension().is_some_and(|e| e == "json");
    let html = resp
        .header("Content-Type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"));
    if html && !is_json {
        return Err(bad(format!(
            "{url}: the server sent an HTML page instead of {} (a login or error page?)",
            job.label()
        )));
    }
    let dir = tmp.parent().unwrap_or(Path::new("."));
    if let (Some(total), Some(free)) = (expected, free_bytes(dir)) {
        let need = total - start;
        if need > free {
            return Err(bad(format!(
                "not enough disk space in {} for {}: {need} bytes needed, {free} free",
                dir.display(),
                job.label()
            )));
        }
    }
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(16);
    let mut file = if resumed {
        // Hash what is there, then append.
        let mut f = std::fs::File::open(tmp)
            .map_err(|e| bad(format!("cannot read {}: {e}", tmp.display())))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| bad(format!("cannot read {}: {e}", tmp.display())))?;
            if n == 0 {
                break;
            }
            if head.len() < 16 {
                let take = (16 - head.len()).min(n);
                head.extend_from_slice(&buf[..take]);
            }
            hasher.update(&buf[..n]);
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(tmp)
            .map_err(|e| bad(format!("cannot write {}: {e}", tmp.display())))?
    } else {
        std::fs::File::create(tmp)
            .map_err(|e| bad(format!("cannot create {}: {e}", tmp.display())))?
    };
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut got: u64 = start;
    let show = opts.progress && std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let label = job.label();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.sync_all();
                return Err(Failure::Resumable(format!(
                    "{url}: connection failed after {got}{} bytes: {e}",
                    expected.map(|t| format!(" of {t}")).unwrap_or_default()
                )));
            }
        };
        if head.len() < 16 {
            let take = (16 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| bad(format!("cannot write {}: {e}", tmp.display())))?;
        got += n as u64;
        if show && last.elapsed() > Duration::from_millis(200) {
            last = Instant::now();
            progress(&label, got, expected);
        }
    }
    if show {
        progress(&label, got, expected);
        eprintln!();
    }
    if let Some(t) = expected {
        if got < t {
            let _ = file.sync_all();
            return Err(Failure::Resumable(format!(
                "{url}: truncated download: got {got} of {t} bytes"
            )));
        }
        if got > t {
            return Err(bad(format!(
                "{url}: got {got} bytes, more than the {t} announced"
            )));
        }
    }
    if got == 0 {
        return Err(bad(format!("{url}: empty response")));
    }
    if !is_json && looks_like_html(&head) {
        return Err(bad(format!(
            "{url}: the server sent an HTML page instead of {label} (a login or error page?)"
        )));
    }
    if let Some(p) = format_problem(&label, &head) {
        return Err(bad(format!("{url}: {p}")));
    }
    let sha = hex(&hasher.finalize());
    if let Some(want) = &job.sha256 {
        if !sha.eq_ignore_ascii_case(want) {
            return Err(bad(format!(
                "{url}: sha256 mismatch for {label}: expected {want}, got {sha}; file not kept"
            )));
        }
    }
    file.sync_all()
        .map_err(|e| bad(format!("cannot write {}: {e}", tmp.display())))?;
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

use crate::cli::catalog::{self, Catalog, Entry, Kind};

/// Which files of a catalog backend are in `dir`.
fn installed(c: &Catalog, m: &Entry, kind: Kind, zoo: &str, dir: &Path) -> Option<String> {
    let files = c.files(m, kind, zoo).ok()?;
    let missing: Vec<&str> = files
        .iter()
        .filter(|f| !dir.join(&f.path).is_file())
        .map(|f| f.path.as_str())
        .collect();
    if missing.len() == files.len() {
        return None;
    }
    Some(if missing.is_empty() {
        "installed".to_string()
    } else {
        format!("partial (missing {})", missing.join(", "))
    })
}

/// `models list`: every catalog model, what it is, its files per backend, and what is installed.
pub fn list(c: &Catalog, hailort: &str) -> Result<String, String> {
    use std::fmt::Write as _;
    let zoo = c.zoo_for(hailort)?;
    let mut out = String::new();
    for m in &c.models {
        let dir = catalog::model_dir(&m.name);
        let scoring = match m.scoring.kind.as_str() {
            "softmax" => format!(
                "softmax over {} x cos",
                m.scoring.logit_scale.map_or("?".into(), |s| s.to_string())
            ),
            k => format!(
                "{k} (scale {}, bias {})",
                m.scoring.logit_scale.map_or("?".into(), |s| s.to_string()),
                m.scoring.logit_bias.map_or("?".into(), |s| s.to_string())
            ),
        };
        let _ = writeln!(out, "{}  ({})", m.name, m.weights);
        let _ = writeln!(
            out,
            "  {}-d, {}x{} px, tokenizer {} ({} tokens), {scoring}; license {}",
            m.embedding_dimension,
            m.image_size,
            m.image_size,
            m.tokenizer,
            m.context_length,
            m.license
        );
        if let Some(why) = m.unsupported() {
            let _ = writeln!(out, "  {why}");
        }
        for kind in [Kind::Hailo, Kind::Onnx] {
            let Ok(files) = c.files(m, kind, &zoo) else {
                continue;
            };
            let state = installed(c, m, kind, &zoo, &dir).unwrap_or_else(|| "not installed".into());
            let extra = if kind == Kind::Hailo {
                format!(", model zoo v{zoo} for HailoRT {hailort}")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {} [{state}{extra}]", kind.as_str());
            for f in files {
                let size = f
                    .pin
                    .bytes
                    .map_or("size ?".into(), |b| format!("{b} bytes"));
                let sha = f.pin.sha256.as_deref().unwrap_or("sha256 not established");
                let _ = writeln!(out, "    {}  {}  ({size}, {sha})", f.path, f.url);
            }
            if kind == Kind::Hailo {
                let text_hef =
                    m.hailo_text() && m.hailo.as_ref().is_some_and(|h| h.text_hef.is_some());
                let text = match (text_hef, m.onnx.is_some()) {
                    (true, true) => "text_embeddings.npz: converted from textual/model.onnx by the fetch (Hailo does not publish it)",
                    (true, false) => "text_embeddings.npz: not published and no ONNX text encoder to convert it from",
                    (false, _) => "no usable text HEF: texts need backend.text: onnx",
                };
                let _ = writeln!(out, "    {text}");
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct ModelFetch {
    pub name: String,
    pub kind: Kind,
    pub hailort: String,
    /// Default: the models directory of a `clip.model: NAME` service.
    pub dir: Option<PathBuf>,
    pub print_sha256: bool,
}

/// `models fetch NAME --backend KIND`: the catalog entry's files, then the settings to use them.
pub fn fetch_model(c: &Catalog, f: &ModelFetch, opts: &FetchOptions) -> Result<String, String> {
    use std::fmt::Write as _;
    let m = c.get(&f.name)?;
    if let Some(why) = m.unsupported() {
        return Err(format!("{}: {why}; nothing downloaded", m.name));
    }
    let zoo = c.zoo_for(&f.hailort)?;
    let files = c.files(m, f.kind, &zoo)?;
    let dir = f.dir.clone().unwrap_or_else(|| catalog::model_dir(&m.name));
    let mut out = String::new();
    let mut pins = serde_json::Map::new();
    for file in &files {
        let job = Job {
            url: file.url.clone(),
            dest: dir.join(&file.path),
            sha256: file.pin.sha256.clone(),
            bytes: file.pin.bytes,
        };
        let outcome = fetch_job(&job, opts)?;
        let _ = writeln!(out, "{outcome}");
        if f.print_sha256 {
            let (bytes, sha) = match &outcome {
                Outcome::Downloaded { bytes, sha256, .. } => (*bytes, sha256.clone()),
                Outcome::UpToDate { path } | Outcome::Present { path } => (
                    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                    sha256_file(path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
                ),
            };
            pins.insert(
                file.url.clone(),
                serde_json::json!({"bytes": bytes, "sha256": sha}),
            );
        }
    }
    let has_text_hef = m.hailo_text() && m.hailo.as_ref().is_some_and(|h| h.text_hef.is_some());
    let textual = dir.join(config::IMMICH_TEXT_FILE);
    let tables = dir.join("text_embeddings.npz");
    let mut tables_made = false;
    if f.kind == Kind::Hailo && has_text_hef && textual.is_file() {
        if opts.force || !tables.exists() {
            let (vocab, width, dim) = text_tables(&textual, &tables)?;
            let _ = writeln!(
                out,
                "converted {} -> {} (token embedding {vocab} x {width}, text projection {width} x {dim})",
                textual.display(),
                tables.display()
            );
        } else {
            let _ = writeln!(out, "present {}", tables.display());
        }
        tables_made = true;
    }
    let entry = serde_json::to_string_pretty(m).expect("catalog entries serialise");
    config::write_atomic(
        &dir.join("catalog-entry.json"),
        format!("{entry}\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    if f.print_sha256 {
        let _ = writeln!(
            out,
            "pins (add to a catalog's \"pins\"):\n{}",
            serde_json::to_string_pretty(&serde_json::json!({ "pins": pins })).unwrap()
        );
    }
    let _ = writeln!(out, "{} files in {}", m.name, dir.display());
    let _ = writeln!(out, "settings:\n  clip:\n    model: {}", m.name);
    match f.kind {
        Kind::Onnx => {
            let mode = std::fs::read_to_string(dir.join("visual/preprocess_cfg.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| {
                    v.get("resize_mode")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                });
            // open_clip's default when the key is absent is "shortest".
            let mode = match mode.as_deref().unwrap_or("shortest") {
                "squash" => "squash",
                _ => "center_crop",
            };
            let _ = writeln!(out, "    resize_mode: {mode}");
            let _ = writeln!(out, "  backend:\n    type: onnx");
            if f.dir.is_some() {
                let _ = writeln!(out, "    onnx:\n      model_dir: {}", dir.display());
            }
        }
        Kind::Hailo => {
            let _ = writeln!(out, "  backend:\n    type: hailo");
            if has_text_hef && tables_made {
                let _ = writeln!(
                    out,
                    "texts: on the chip (text HEF + text_embeddings.npz); `backend.text: onnx` \
                     uses textual/model.onnx instead"
                );
            } else if has_text_hef {
                let _ = writeln!(
                    out,
                    "note: the text HEF needs text_embeddings.npz (token embeddings + text projection), \
                     which Hailo does not publish and the catalog has no ONNX text encoder to \
                     convert it from; `hailo-clip models text-tables` converts one (docs/models.md)"
                );
            } else {
                let _ = writeln!(
                    out,
                    "    text: onnx\nnote: no text HEF in the catalog; run `models fetch {} --backend onnx` for the text encoder",
                    m.name
                );
            }
        }
    }
    Ok(out)
}

/// `models text-tables`: the text HEF's host tables from an ONNX text encoder of the same weights.
pub fn text_tables(onnx: &Path, out: &Path) -> Result<(usize, usize, usize), String> {
    backend::hailo::onnx_tables::convert(onnx, out)
}
