//! `hailo-clip doctor`: checks the host for what the configured backend needs and prints one
//! line per check with what to fix. Works without the `hailo` feature and says what it could
//! not check then.

use backend::hailo::diagnostics::{npz_arrays, probe_device, same_version, DeviceProbe};
use backend::hailo::files::check_file;
use backend::hailo::{preflight, text, HailoOptions, ARCH};
use config::{BackendKind, Settings};
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Ok => "OK",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
            Level::Skip => "SKIP",
        })
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub level: Level,
    pub name: String,
    pub detail: String,
    /// What to do; empty when nothing.
    pub fix: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, level: Level, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            level,
            name: name.to_string(),
            detail: detail.into(),
            fix: fix.into(),
        });
    }

    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.level == Level::Fail)
    }

    pub fn count(&self, level: Level) -> usize {
        self.checks.iter().filter(|c| c.level == level).count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            write!(f, "{:<4} {}: {}", c.level, c.name, c.detail)?;
            if !c.fix.is_empty() {
                write!(f, " -> fix: {}", c.fix)?;
            }
            writeln!(f)?;
        }
        writeln!(
            f,
            "doctor: {} ok, {} warn, {} fail, {} skipped",
            self.count(Level::Ok),
            self.count(Level::Warn),
            self.count(Level::Fail),
            self.count(Level::Skip)
        )
    }
}

pub fn run(settings: &Settings, config: Option<&Path>) -> Report {
    let group = HailoOptions::from_settings(settings).group_id();
    run_with(settings, config, &preflight::Host::default(), &|hefs| {
        probe_device(hefs, group)
    })
}

pub fn run_with(
    settings: &Settings,
    config: Option<&Path>,
    host: &preflight::Host,
    probe: DeviceProbe,
) -> Report {
    let mut r = Report::default();
    match config {
        Some(p) => r.add(Level::Ok, "config", format!("loaded {}", p.display()), ""),
        None => r.add(
            Level::Warn,
            "config",
            "no config file found; using defaults",
            "write /etc/hailo/hailo-clip.yaml or pass --config",
        ),
    }
    let image_kind = settings.backend.kind;
    let text_kind = settings.text_backend();
    let uses_hailo = image_kind == BackendKind::Hailo || text_kind == BackendKind::Hailo;
    r.add(
        Level::Ok,
        "backend",
        format!(
            "images on {}, texts on {}",
            image_kind.as_str(),
            text_kind.as_str()
        ),
        "",
    );
    text_checks(settings, &mut r);
    if uses_hailo {
        hailo_checks(settings, host, probe, &mut r);
    } else {
        r.add(
            Level::Skip,
            "hailo",
            "backend.type is not hailo: device checks skipped",
            "",
        );
    }
    if image_kind == BackendKind::Onnx || text_kind == BackendKind::Onnx {
        onnx_checks(
            settings,
            image_kind == BackendKind::Onnx,
            text_kind == BackendKind::Onnx,
            &mut r,
        );
    }
    download_checks(settings, &mut r);
    r
}

/// Which text encoder is active, and whether its files belong to the image encoder's model
/// (same model name and embedding dimension).
fn text_checks(settings: &Settings, r: &mut Report) {
    let dir = settings.models_dir();
    let read_json = |p: &Path| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
    };
    let entry = read_json(&dir.join("catalog-entry.json"));
    let mut dims: Vec<(String, u64)> = Vec::new();
    if let Some(d) = settings.clip.embedding_dimension {
        dims.push(("clip.embedding_dimension".into(), d as u64));
    }
    if let Some(e) = &entry {
        if let Some(name) = e["name"].as_str() {
            if name != settings.clip.model {
                r.add(
                    Level::Fail,
                    "model files",
                    format!(
                        "{} holds {name}'s files but clip.model is {}",
                        dir.display(),
                        settings.clip.model
                    ),
                    "fetch the configured model or correct clip.model",
                );
            }
        }
        if let Some(d) = e["embedding_dimension"].as_u64() {
            dims.push(("catalog-entry.json".into(), d));
        }
    }
    match settings.text_backend() {
        BackendKind::Hailo => {
            let o = backend::hailo::HailoOptions::from_settings(settings);
            let Some(t) = o.text else { return };
            r.add(
                Level::Ok,
                "text encoder",
                format!(
                    "text HEF {} with tables {} (CLIP BPE tokenizer on the host)",
                    t.hef.display(),
                    t.embeddings.display()
                ),
                "",
            );
            let textual = dir.join(config::IMMICH_TEXT_FILE);
            if !t.embeddings.exists() {
                let fix = if textual.is_file() {
                    format!(
                        "hailo-clip models text-tables --onnx {} --out {}",
                        textual.display(),
                        t.embeddings.display()
                    )
                } else {
                    format!(
                        "hailo-clip models fetch {} --backend hailo (converts the tables), or backend.text: onnx",
                        settings.clip.model
                    )
                };
                r.add(
                    Level::Fail,
                    "text tables",
                    format!("{} is missing", t.embeddings.display()),
                    fix,
                );
            } else if let Ok(a) = backend::hailo::npz::read_npz(
                &t.embeddings,
                &[backend::hailo::text::PROJECTION_KEY],
            ) {
                if let Some(&d) = a[0].shape.first() {
                    dims.push((t.embeddings.display().to_string(), d as u64));
                }
            }
        }
        BackendKind::Onnx => {
            let text = settings.onnx_text_model();
            let immich = text.ends_with(config::IMMICH_TEXT_FILE);
            let tokenizer = if immich {
                let tj = settings.onnx_model_dir().join("textual/tokenizer.json");
                let kind = read_json(&tj)
                    .and_then(|v| v["model"]["type"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unreadable".into());
                format!("{} ({kind})", tj.display())
            } else {
                "built-in CLIP BPE".to_string()
            };
            r.add(
                Level::Ok,
                "text encoder",
                format!("ONNX {}; tokenizer {tokenizer}", text.display()),
                "",
            );
            if immich {
                let cfg = settings.onnx_model_dir().join("config.json");
                if let Some(d) = read_json(&cfg).and_then(|v| v["embed_dim"].as_u64()) {
                    dims.push((cfg.display().to_string(), d));
                }
            }
        }
        BackendKind::Mock => {}
    }
    if let Some((first, d0)) = dims.first() {
        if let Some((other, d)) = dims.iter().find(|(_, d)| d != d0) {
            r.add(
                Level::Fail,
                "dimensions",
                format!("{first} says {d0} but {other} says {d}"),
                "image and text files must come from the same model",
            );
        }
    }
}

fn user_description() -> String {
    let (uid, groups) = preflight::current_user();
    let names: Vec<String> = groups
        .iter()
        .map(|g| preflight::group_name(*g).unwrap_or_else(|| g.to_string()))
        .collect();
    format!("uid {uid}, groups {}", names.join(","))
}

fn hailo_checks(settings: &Settings, host: &preflight::Host, probe: DeviceProbe, r: &mut Report) {
    // Device node and permissions.
    let node_ok = match host.device_node() {
        preflight::NodeState::Usable(p) => {
            r.add(
                Level::Ok,
                "device node",
                format!(
                    "{} is readable and writable ({})",
                    preflight::describe_node(&p),
                    user_description()
                ),
                "",
            );
            true
        }
        other => {
            let problem = host.problem().unwrap_or_default();
            let detail = match other {
                preflight::NodeState::NoPermission(p) => format!(
                    "{} is not writable for this user ({})",
                    preflight::describe_node(&p),
                    user_description()
                ),
                _ => "neither /dev/hailo0 nor /dev/h1x-0 exists".to_string(),
            };
            r.add(Level::Fail, "device node", detail, problem);
            false
        }
    };
    // Kernel module and its version.
    let driver = host.driver_version();
    if host.module_loaded() {
        r.add(
            Level::Ok,
            "kernel module",
            format!(
                "{} loaded, version {}",
                preflight::MODULE,
                driver.as_deref().unwrap_or("unknown")
            ),
            "",
        );
    } else {
        r.add(
            Level::Fail,
            "kernel module",
            format!("{} is not loaded", preflight::MODULE),
            format!(
                "install the Hailo-10H PCIe driver of the same version as libhailort and run `modprobe {}` \
                 (NixOS: hardware.hailo.enable)",
                preflight::MODULE
            ),
        );
    }
    // Model files.
    let opts = HailoOptions::from_settings(settings);
    let mut hefs = Vec::new();
    if settings.backend.kind == BackendKind::Hailo {
        hefs.push(("image HEF", opts.image_hef.clone()));
    }
    if let Some(t) = &opts.text {
        hefs.push(("text HEF", t.hef.clone()));
    }
    let mut present = Vec::new();
    for (name, path) in &hefs {
        match check_file(path) {
            Ok(len) => {
                r.add(
                    Level::Ok,
                    name,
                    format!("{} ({len} bytes, HEF header ok)", path.display()),
                    "",
                );
                present.push(path.clone());
            }
            Err(e) => r.add(
                Level::Fail,
                name,
                e,
                format!(
                    "run `hailo-clip models fetch` or set backend.hailo.{} to a {ARCH} HEF",
                    if *name == "image HEF" {
                        "image_hef"
                    } else {
                        "text_hef"
                    }
                ),
            ),
        }
    }
    if let Some(t) = &opts.text {
        match npz_arrays(&t.embeddings) {
            Ok(names)
                if names.iter().any(|n| n == text::EMBEDDINGS_KEY)
                    && names.iter().any(|n| n == text::PROJECTION_KEY) =>
            {
                r.add(
                    Level::Ok,
                    "text embeddings",
                    format!(
                        "{} has {} and {}",
                        t.embeddings.display(),
                        text::EMBEDDINGS_KEY,
                        text::PROJECTION_KEY
                    ),
                    "",
                )
            }
            Ok(names) => r.add(
                Level::Fail,
                "text embeddings",
                format!(
                    "{} has {}; needs {} and {}",
                    t.embeddings.display(),
                    names.join(", "),
                    text::EMBEDDINGS_KEY,
                    text::PROJECTION_KEY
                ),
                "use the model zoo's CLIP .npz for this text encoder",
            ),
            Err(e) => r.add(
                Level::Fail,
                "text embeddings",
                e,
                "run `hailo-clip models fetch` or set backend.hailo.text_embeddings",
            ),
        }
    }
    // Library, firmware and a real HEF load need the device and the shim.
    if !node_ok {
        r.add(
            Level::Skip,
            "device",
            "not opened: the device node is not usable",
            "",
        );
        return;
    }
    let Some(facts) = probe(&present) else {
        r.add(
            Level::Skip,
            "libhailort / firmware / HEF load",
            "this binary was built without the `hailo` feature: library and firmware versions and HEF \
             compatibility were not checked",
            "build with `--features hailo` (the Nix package for the Pi does)",
        );
        return;
    };
    match &facts.library {
        Some(lib) => {
            let same = driver.as_deref().map(|d| same_version(d, lib));
            match same {
                Some(false) => r.add(
                    Level::Fail,
                    "libhailort",
                    format!("library {lib}, driver {}", driver.as_deref().unwrap_or("?")),
                    "install driver, firmware and libhailort of one release; reboot after upgrading the driver",
                ),
                _ => r.add(Level::Ok, "libhailort", format!("version {lib}"), ""),
            }
        }
        None => r.add(Level::Warn, "libhailort", "version unknown", ""),
    }
    if let Some(e) = &facts.open_error {
        if facts.busy {
            r.add(
                Level::Warn,
                "device",
                format!("{e}; firmware and HEF loading not checked"),
                "expected while `hailo-clip serve` runs; otherwise stop the other user (e.g. hailo-ollama)",
            );
        } else {
            r.add(Level::Fail, "device", e.clone(), "");
        }
        return;
    }
    let fw = facts.firmware.clone().unwrap_or_else(|| "unknown".into());
    let arch = facts
        .architecture
        .clone()
        .unwrap_or_else(|| "unknown".into());
    let fw_matches = match (&facts.firmware, &facts.library) {
        (Some(f), Some(l)) => same_version(f, l),
        _ => true,
    };
    if arch != ARCH && arch != "unknown" {
        r.add(
            Level::Fail,
            "device",
            format!("a {arch} device, firmware {fw}"),
            format!("this service's HEFs are for {ARCH}; use HEFs compiled for {arch}"),
        );
    } else if !fw_matches {
        r.add(
            Level::Fail,
            "firmware",
            format!(
                "firmware {fw}, library {}",
                facts.library.as_deref().unwrap_or("?")
            ),
            "install the firmware of the library's release and reboot",
        );
    } else {
        r.add(Level::Ok, "device", format!("{arch}, firmware {fw}"), "");
    }
    for p in &facts.hefs_loaded {
        r.add(
            Level::Ok,
            "HEF load",
            format!("{} configured on the device", p.display()),
            "",
        );
    }
    for (p, e) in &facts.hef_errors {
        r.add(Level::Fail, "HEF load", format!("{}: {e}", p.display()), "");
    }
}

fn onnx_checks(settings: &Settings, image: bool, textual: bool, r: &mut Report) {
    let o = &settings.backend.onnx;
    let mut files = Vec::new();
    if image {
        files.push(("image ONNX", settings.onnx_image_model()));
    }
    if textual {
        files.push(("text ONNX", settings.onnx_text_model()));
    }
    for (name, p) in files {
        match std::fs::metadata(&p) {
            Ok(m) if m.len() > 0 => r.add(
                Level::Ok,
                name,
                format!("{} ({} bytes)", p.display(), m.len()),
                "",
            ),
            Ok(_) => r.add(
                Level::Fail,
                name,
                format!("{} is empty", p.display()),
                "export or download it again",
            ),
            Err(e) => r.add(
                Level::Fail,
                name,
                format!("{}: {e}", p.display()),
                "`hailo-clip models fetch MODEL --backend onnx`, tools/export-onnx.py, or set backend.onnx paths",
            ),
        }
    }
    if let Some(lib) = &o.library_path {
        if lib.exists() {
            r.add(Level::Ok, "onnxruntime", format!("{}", lib.display()), "");
        } else {
            r.add(
                Level::Fail,
                "onnxruntime",
                format!("{} does not exist", lib.display()),
                "install ONNX Runtime or fix backend.onnx.library_path",
            );
        }
    }
}

fn download_checks(settings: &Settings, r: &mut Report) {
    let dir = settings.models_dir();
    for d in &settings.backend.hailo.downloads {
        let p = dir.join(&d.file);
        if p.exists() {
            r.add(
                Level::Ok,
                "download",
                format!("{} present", p.display()),
                "",
            );
        } else {
            r.add(
                Level::Warn,
                "download",
                format!("{} not downloaded yet", p.display()),
                "run `hailo-clip models fetch`",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend::hailo::diagnostics::DeviceFacts;
    use std::path::PathBuf;

    /// Image and text on the chip, with every file in place.
    fn hailo_settings(dir: &Path) -> Settings {
        let mut s = Settings::default();
        s.backend.kind = BackendKind::Hailo;
        s.backend.hailo.image_hef = Some(dir.join("image.hef"));
        s.backend.hailo.text_hef = Some(dir.join("text.hef"));
        s.backend.hailo.text_embeddings = Some(dir.join("text.npz"));
        hef(&dir.join("text.hef"));
        backend::hailo::npz::write_npz(
            &dir.join("text.npz"),
            &[
                (text::EMBEDDINGS_KEY, &[2, 3], &[0.0; 6]),
                (text::PROJECTION_KEY, &[2, 2], &[0.0; 4]),
            ],
        )
        .unwrap();
        s
    }

    fn fake_host(root: &Path, node: bool, module: Option<&str>) -> preflight::Host {
        if node {
            std::fs::create_dir_all(root.join("dev")).unwrap();
            std::fs::write(root.join("dev/hailo0"), "").unwrap();
        }
        if let Some(v) = module {
            std::fs::create_dir_all(root.join("sys/module/hailo1x_pci")).unwrap();
            std::fs::write(root.join("sys/module/hailo1x_pci/version"), v).unwrap();
        }
        preflight::Host::new(root)
    }

    fn hef(path: &Path) {
        let mut b = backend::hailo::files::HEF_MAGIC.to_vec();
        b.extend_from_slice(&2u32.to_be_bytes());
        b.extend_from_slice(&[0; 64]);
        std::fs::write(path, b).unwrap();
    }

    fn find<'a>(r: &'a Report, name: &str) -> &'a Check {
        r.checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {r}"))
    }

    #[test]
    fn healthy_host_without_feature_skips_device_checks() {
        let d = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        hef(&d.path().join("image.hef"));
        let host = fake_host(root.path(), true, Some("5.1.1\n"));
        let r = run_with(
            &hailo_settings(d.path()),
            Some(Path::new("/etc/x.yaml")),
            &host,
            &|_| None,
        );
        assert!(!r.failed(), "{r}");
        assert_eq!(find(&r, "device node").level, Level::Ok);
        assert!(find(&r, "kernel module").detail.contains("version 5.1.1"));
        assert_eq!(find(&r, "image HEF").level, Level::Ok);
        let skip = find(&r, "libhailort / firmware / HEF load");
        assert_eq!(skip.level, Level::Skip);
        assert!(skip.detail.contains("without the `hailo` feature"));
        assert!(r
            .to_string()
            .contains("SKIP libhailort / firmware / HEF load"));
    }

    #[test]
    fn missing_node_module_and_hef_fail_with_fixes() {
        let d = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("image.hef"), "<html>not found</html>").unwrap();
        let host = fake_host(root.path(), false, None);
        let r = run_with(&hailo_settings(d.path()), None, &host, &|_| {
            panic!("no probe without a node")
        });
        assert!(r.failed());
        assert!(find(&r, "device node").fix.contains("modprobe hailo1x_pci"));
        assert_eq!(find(&r, "kernel module").level, Level::Fail);
        let h = find(&r, "image HEF");
        assert_eq!(h.level, Level::Fail);
        assert!(h.detail.contains("not a HEF"), "{}", h.detail);
        assert!(h.fix.contains("hailo-clip models fetch"));
        let out = r.to_string();
        assert!(
            out.lines().any(|l| l.starts_with("FAIL device node:")),
            "{out}"
        );
    }

    #[test]
    fn probe_results_version_mismatch_and_busy() {
        let d = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        hef(&d.path().join("image.hef"));
        let host = fake_host(root.path(), true, Some("5.2.0"));
        let s = hailo_settings(d.path());
        let mismatch = |_: &[PathBuf]| {
            Some(DeviceFacts {
                library: Some("5.1.1".into()),
                firmware: Some("5.1.1".into()),
                architecture: Some("hailo10h".into()),
                hefs_loaded: vec![PathBuf::from("image.hef")],
                ..Default::default()
            })
        };
        let r = run_with(&s, None, &host, &mismatch);
        let lib = find(&r, "libhailort");
        assert_eq!(lib.level, Level::Fail);
        assert!(lib.detail.contains("library 5.1.1, driver 5.2.0"));
        assert!(lib.fix.contains("reboot"));
        assert_eq!(find(&r, "HEF load").level, Level::Ok);

        let host = fake_host(root.path(), true, Some("5.1.1"));
        let busy = |_: &[PathBuf]| {
            Some(DeviceFacts {
                library: Some("5.1.1".into()),
                open_error: Some("another process owns the Hailo device".into()),
                busy: true,
                ..Default::default()
            })
        };
        let r = run_with(&s, None, &host, &busy);
        assert!(!r.failed(), "{r}");
        assert_eq!(find(&r, "device").level, Level::Warn);
    }

    #[test]
    fn mock_backend_skips_hailo() {
        let mut s = Settings::default();
        s.backend.kind = BackendKind::Mock;
        let root = tempfile::tempdir().unwrap();
        let r = run_with(&s, None, &preflight::Host::new(root.path()), &|_| None);
        assert!(!r.failed(), "{r}");
        assert_eq!(find(&r, "hailo").level, Level::Skip);
    }

    #[test]
    fn names_the_text_encoder_and_catches_a_dimension_mismatch() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("textual")).unwrap();
        std::fs::write(d.path().join("textual/model.onnx"), b"x").unwrap();
        std::fs::write(
            d.path().join("textual/tokenizer.json"),
            r#"{"model": {"type": "Unigram"}}"#,
        )
        .unwrap();
        std::fs::write(d.path().join("config.json"), r#"{"embed_dim": 768}"#).unwrap();
        let mut s = Settings::default();
        s.backend.kind = BackendKind::Onnx;
        s.backend.onnx.model_dir = Some(d.path().to_path_buf());
        s.clip.embedding_dimension = Some(512);
        let r = run_with(&s, None, &preflight::Host::new(d.path()), &|_| None);
        let t = find(&r, "text encoder");
        assert!(t.detail.contains("textual/model.onnx"), "{}", t.detail);
        assert!(t.detail.contains("Unigram"), "{}", t.detail);
        let dims = find(&r, "dimensions");
        assert_eq!(dims.level, Level::Fail);
        assert!(
            dims.detail.contains("512") && dims.detail.contains("768"),
            "{}",
            dims.detail
        );
    }

    #[test]
    fn versions_compare_by_numbers() {
        assert!(same_version("5.1.1", "5.1.1"));
        assert!(same_version("5.1.1\n", "v5.1.1"));
        assert!(!same_version("5.2.0", "5.1.1"));
    }
}
