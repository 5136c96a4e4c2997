//! Settings out: JSON with every default spelled out, written atomically.

use crate::{ConfigError, Settings};
use std::path::{Path, PathBuf};

impl Settings {
    /// JSON with every default spelled out; stable key order so renders are byte-identical.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("settings serialize");
        s.push('\n');
        s
    }
}

/// YAML in, JSON with defaults out, written via a temp file + rename so readers never see half a file.
pub fn render(input: &Path, output: &Path) -> Result<Settings, ConfigError> {
    let settings = Settings::load_file(input)?;
    let json = settings.to_json();
    write_atomic(output, json.as_bytes()).map_err(|source| ConfigError::Write {
        path: output.to_path_buf(),
        source,
    })?;
    Ok(settings)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
