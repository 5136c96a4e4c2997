//! Named label sets: labels, negatives and templates whose class embeddings are computed once
//! (`PUT /v1/label-sets/{name}`) and then used by name, so a 1,000-class request neither sends
//! 1,000 labels nor builds 1,000 prompts. With `cache.persist` each set is a JSON file under
//! `<cache dir>/label-sets/`, read back at start; a set computed for another model identity is
//! kept and reported as stale, never used.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// What a client defines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelSetSpec {
    pub labels: Vec<String>,
    #[serde(default)]
    pub negative_labels: Vec<String>,
    pub templates: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LabelSet {
    pub name: String,
    pub spec: LabelSetSpec,
    pub model: String,
    pub identity: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// (label, class embedding), in `spec.labels` order.
    pub classes: Vec<(String, Vec<f32>)>,
    pub negatives: Vec<Vec<f32>>,
}

/// A summary for listings and answers.
#[derive(Debug, Clone, Serialize)]
pub struct LabelSetInfo {
    pub name: String,
    pub model: String,
    pub labels: usize,
    pub negative_labels: usize,
    pub templates: usize,
    pub created: u64,
    /// Computed for another model (or model files): must be PUT again before use.
    pub stale: bool,
}

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    name: String,
    model: String,
    identity: String,
    created: u64,
    spec: LabelSetSpec,
    /// One base64 string of little-endian f32 per class, labels then negatives.
    vectors: Vec<String>,
}

const FORMAT: u32 = 1;

pub struct LabelSets {
    identity: String,
    dir: Option<PathBuf>,
    sets: RwLock<BTreeMap<String, Arc<LabelSet>>>,
}

impl LabelSets {
    /// `dir`: where sets are kept across restarts (None: memory only).
    pub fn new(identity: String, dir: Option<PathBuf>) -> Self {
        let me = Self {
            identity,
            dir,
            sets: RwLock::new(BTreeMap::new()),
        };
        me.load();
        me
    }

    fn load(&self) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut sets = self.sets.write().unwrap();
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            match read(&p) {
                Ok(set) => {
                    sets.insert(set.name.clone(), Arc::new(set));
                }
                Err(err) => {
                    tracing::warn!(path = %p.display(), error = %err, "label set file ignored")
                }
            }
        }
        let stale = sets
            .values()
            .filter(|s| s.identity != self.identity)
            .count();
        tracing::info!(sets = sets.len(), stale, "label sets loaded");
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn info(&self, s: &LabelSet) -> LabelSetInfo {
        LabelSetInfo {
            name: s.name.clone(),
            model: s.model.clone(),
            labels: s.spec.labels.len(),
            negative_labels: s.spec.negative_labels.len(),
            templates: s.spec.templates.len(),
            created: s.created,
            stale: s.identity != self.identity,
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<LabelSet>> {
        self.sets.read().unwrap().get(name).cloned()
    }

    pub fn list(&self) -> Vec<LabelSetInfo> {
        self.sets
            .read()
            .unwrap()
            .values()
            .map(|s| self.info(s))
            .collect()
    }

    /// Stores the set in memory (replacing one of the same name) and returns the file write
    /// to run, blocking, when sets are kept on disk.
    pub fn put(&self, set: LabelSet) -> Option<impl FnOnce() -> Result<(), String> + Send> {
        let set = Arc::new(set);
        self.sets
            .write()
            .unwrap()
            .insert(set.name.clone(), set.clone());
        let path = self.dir.as_ref()?.join(format!("{}.json", set.name));
        Some(move || {
            write(&path, &set)
                .map_err(|e| format!("label set {:?} is in memory but not on disk: {e}", set.name))
        })
    }

    /// True when there was such a set.
    pub fn delete(&self, name: &str) -> bool {
        let had = self.sets.write().unwrap().remove(name).is_some();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(dir.join(format!("{name}.json")));
        }
        had
    }
}

/// Label-set names are file names and URL segments, as model names are.
pub fn valid_name(name: &str) -> bool {
    config::valid_model_name(name)
}

fn b64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Result<Vec<f32>, String> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("vector: {e}"))?;
    if b.len() % 4 != 0 {
        return Err("vector length is not a whole number of f32".into());
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn write(path: &Path, s: &LabelSet) -> std::io::Result<()> {
    let file = File {
        format: FORMAT,
        name: s.name.clone(),
        model: s.model.clone(),
        identity: s.identity.clone(),
        created: s.created,
        spec: s.spec.clone(),
        vectors: s
            .classes
            .iter()
            .map(|(_, v)| b64(v))
            .chain(s.negatives.iter().map(|v| b64(v)))
            .collect(),
    };
    let json = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
    config::write_atomic(path, &json)
}

fn read(path: &Path) -> Result<LabelSet, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let f: File = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if f.format != FORMAT {
        return Err(format!("format {} (this version reads {FORMAT})", f.format));
    }
    if !valid_name(&f.name) {
        return Err(format!("invalid name {:?}", f.name));
    }
    let n = f.spec.labels.len();
    if f.vectors.len() != n + f.spec.negative_labels.len() {
        return Err("vectors do not match the labels".into());
    }
    let mut vs = f
        .vectors
        .iter()
        .map(|v| unb64(v))
        .collect::<Result<Vec<_>, _>>()?;
    let negatives = vs.split_off(n);
    Ok(LabelSet {
        classes: f.spec.labels.iter().cloned().zip(vs).collect(),
        negatives,
        name: f.name,
        model: f.model,
        identity: f.identity,
        created: f.created,
        spec: f.spec,
    })
}
