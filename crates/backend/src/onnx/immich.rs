//! Immich's ONNX layout (immich-app/<model> on Hugging Face, also used by other projects):
//!
//! ```text
//! config.json                 open_clip model config: embed_dim, text_cfg.context_length, ...
//! visual/model.onnx           float32 [1, 3, S, S] "image" -> "embedding"
//! visual/preprocess_cfg.json  open_clip PreprocessCfg: size, mode, mean, std, interpolation, resize_mode, fill_color
//! textual/model.onnx          int32 [1, context] "text" -> "embedding"
//! textual/tokenizer.json      Hugging Face tokenizers file
//! ```
//!
//! Everything is checked at load so that a wrong or partial download is a start-up error naming
//! the file, never a model served with the wrong preprocessing or tokenizer.

use super::model::Sidecar;
use crate::BackendError;
use clip::{ResizeMode, CONTEXT_LENGTH, EOT, SOT};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const PREPROCESS_FILE: &str = "visual/preprocess_cfg.json";
pub const TOKENIZER_FILE: &str = "textual/tokenizer.json";

/// The model directory when `model` is `<dir>/visual/model.onnx` or `<dir>/textual/model.onnx`.
pub fn root_of(model: &Path) -> Option<PathBuf> {
    let parent = model.parent()?;
    let side = parent.file_name()?.to_str()?;
    (model.file_name()? == "model.onnx" && (side == "visual" || side == "textual"))
        .then(|| parent.parent().map(Path::to_path_buf))
        .flatten()
}

fn setup(path: &Path, what: impl std::fmt::Display) -> BackendError {
    BackendError::Setup(format!("{}: {what}", path.display()))
}

fn read(path: &Path) -> Result<String, BackendError> {
    std::fs::read_to_string(path).map_err(|e| {
        setup(
            path,
            format!(
                "cannot read it ({e}); a model in Immich's layout needs config.json, \
                 visual/model.onnx, visual/preprocess_cfg.json, textual/model.onnx and \
                 textual/tokenizer.json (`hailo-clip models fetch NAME --backend onnx` downloads them)"
            ),
        )
    })
}

/// The parts of open_clip's model config the service needs; the rest (tower shapes) is the
/// graphs' business.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    pub embed_dim: usize,
    #[serde(default)]
    pub text_cfg: TextConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub context_length: Option<usize>,
    #[serde(default)]
    pub hf_tokenizer_name: Option<String>,
}

impl ModelConfig {
    pub fn load(root: &Path) -> Result<Self, BackendError> {
        let path = root.join(CONFIG_FILE);
        let c: ModelConfig = serde_json::from_str(&read(&path)?)
            .map_err(|e| setup(&path, format!("not an open_clip model config: {e}")))?;
        if c.embed_dim == 0 {
            return Err(setup(&path, "embed_dim is 0"));
        }
        let ctx = c.text_cfg.context_length.unwrap_or(CONTEXT_LENGTH);
        if ctx != CONTEXT_LENGTH {
            return Err(setup(
                &path,
                format!(
                    "text_cfg.context_length is {ctx}; the service's text path takes \
                     {CONTEXT_LENGTH}-token inputs only (SigLIP-style {ctx}-token models are not \
                     supported yet)"
                ),
            ));
        }
        Ok(c)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Size {
    One(u32),
    Two([u32; 2]),
}

/// open_clip's `PreprocessCfg`, exactly: an unknown field is an error, since it could change
/// what the model expects.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreprocess {
    size: Size,
    #[serde(default)]
    mode: Option<String>,
    mean: Vec<f32>,
    std: Vec<f32>,
    #[serde(default)]
    interpolation: Option<String>,
    #[serde(default)]
    resize_mode: Option<String>,
    #[serde(default)]
    fill_color: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Preprocess {
    /// (width, height)
    pub size: (u32, u32),
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize_mode: ResizeMode,
}

impl Preprocess {
    pub fn load(root: &Path) -> Result<Self, BackendError> {
        let path = root.join(PREPROCESS_FILE);
        Self::parse(&read(&path)?).map_err(|e| setup(&path, e))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawPreprocess = serde_json::from_str(text).map_err(|e| e.to_string())?;
        // open_clip's size is (height, width) when a pair.
        let (h, w) = match raw.size {
            Size::One(s) => (s, s),
            Size::Two([h, w]) => (h, w),
        };
        if h == 0 || w == 0 || h > 4096 || w > 4096 {
            return Err(format!("size {h}x{w} is not a usable input size"));
        }
        if let Some(m) = raw.mode.as_deref() {
            if m != "RGB" {
                return Err(format!("mode {m:?} is not supported (only \"RGB\")"));
            }
        }
        let three = |name: &str, v: &[f32]| -> Result<[f32; 3], String> {
            <[f32; 3]>::try_from(v)
                .map_err(|_| format!("{name} has {} values; expected 3 (R, G, B)", v.len()))
        };
        let mean = three("mean", &raw.mean)?;
        let std = three("std", &raw.std)?;
        if mean
            .iter()
            .any(|x| !x.is_finite() || !(0.0..=1.0).contains(x))
        {
            return Err(format!("mean {mean:?} is not in [0, 1]"));
        }
        if std.iter().any(|x| !x.is_finite() || *x <= 0.0) {
            return Err(format!("std {std:?} must be positive"));
        }
        match raw.interpolation.as_deref().unwrap_or("bicubic") {
            "bicubic" => {}
            other => {
                return Err(format!(
                    "interpolation {other:?} is not supported (the service resizes bicubic)"
                ))
            }
        }
        // open_clip's default for configs without the key is "shortest".
        let resize_mode = match raw.resize_mode.as_deref().unwrap_or("shortest") {
            "shortest" => ResizeMode::CenterCrop,
            "squash" => ResizeMode::Squash,
            other => {
                return Err(format!(
                    "resize_mode {other:?} is not supported (\"shortest\" or \"squash\")"
                ))
            }
        };
        if let Some(f) = &raw.fill_color {
            if !f.is_number() {
                return Err(format!("fill_color {f} is not a number"));
            }
        }
        Ok(Preprocess {
            size: (w, h),
            mean,
            std,
            resize_mode,
        })
    }

    /// The normalisation and size as the backend's sidecar carries them.
    pub fn sidecar(&self) -> Sidecar {
        Sidecar {
            mean: Some(self.mean),
            std: Some(self.std),
            image_size: (self.size.0 == self.size.1).then_some(self.size.0),
            image: None,
            text: None,
        }
    }
}

/// What textual/tokenizer.json holds, as far as choosing a tokenizer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerKind {
    /// OpenAI's CLIP BPE (49408 tokens, <|startoftext|> 49406, <|endoftext|> 49407): the
    /// service's own open_clip-exact tokenizer gives the same ids.
    ClipBpe,
}

pub fn tokenizer_kind(root: &Path) -> Result<TokenizerKind, BackendError> {
    let path = root.join(TOKENIZER_FILE);
    classify_tokenizer(&read(&path)?).map_err(|e| setup(&path, e))
}

pub fn classify_tokenizer(text: &str) -> Result<TokenizerKind, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a tokenizer file: {e}"))?;
    let model = v
        .get("model")
        .and_then(|m| m.as_object())
        .ok_or("not a Hugging Face tokenizers file (no \"model\" object)")?;
    let kind = model.get("type").and_then(|t| t.as_str()).unwrap_or("?");
    let vocab = model.get("vocab");
    let id_of = |tok: &str| {
        vocab
            .and_then(|v| v.get(tok))
            .and_then(|i| i.as_u64())
            .map(|i| i as u32)
    };
    let size = vocab.and_then(|v| v.as_object()).map_or(0, |m| m.len());
    if kind == "BPE"
        && size == 49408
        && id_of("<|startoftext|>") == Some(SOT)
        && id_of("<|endoftext|>") == Some(EOT)
    {
        return Ok(TokenizerKind::ClipBpe);
    }
    let what = match kind {
        "Unigram" => {
            "a sentencepiece (Unigram) tokenizer, as SigLIP and XLM-RoBERTa use".to_string()
        }
        "BPE" => format!("a BPE tokenizer of {size} tokens that is not CLIP's"),
        "WordPiece" => "a WordPiece tokenizer".to_string(),
        other => format!("a {other} tokenizer"),
    };
    Err(format!(
        "{what}; only CLIP's BPE (49408 tokens, <|startoftext|> = {SOT}, <|endoftext|> = {EOT}) \
         is supported, so this model is not served"
    ))
}

/// Everything outside the graphs, read and checked together.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub config: ModelConfig,
    /// Set when the image encoder is used.
    pub preprocess: Option<Preprocess>,
    /// Set when the text encoder is used.
    pub tokenizer: Option<TokenizerKind>,
}

impl Layout {
    pub fn load(root: &Path, image: bool, text: bool) -> Result<Self, BackendError> {
        let config = ModelConfig::load(root)?;
        let preprocess = image.then(|| Preprocess::load(root)).transpose()?;
        let tokenizer = text.then(|| tokenizer_kind(root)).transpose()?;
        Ok(Layout {
            root: root.to_path_buf(),
            config,
            preprocess,
            tokenizer,
        })
    }

    /// A graph's output dimension against config.json's embed_dim.
    pub fn check_dim(&self, graph: &Path, dim: usize) -> Result<(), BackendError> {
        if dim == self.config.embed_dim {
            return Ok(());
        }
        Err(setup(
            graph,
            format!(
                "gives {dim}-dimensional embeddings but {} says embed_dim {}",
                self.root.join(CONFIG_FILE).display(),
                self.config.embed_dim
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_CLIP: &str = r#"{"size": [224, 224], "mode": "RGB",
        "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
        "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0}"#;

    #[test]
    fn open_clip_preprocess_cfg() {
        let p = Preprocess::parse(OPEN_CLIP).unwrap();
        assert_eq!(p.size, (224, 224));
        assert_eq!(p.resize_mode, ResizeMode::CenterCrop);
        assert_eq!(p.mean[0], 0.481_454_66);
        let sq = Preprocess::parse(&OPEN_CLIP.replace("shortest", "squash")).unwrap();
        assert_eq!(sq.resize_mode, ResizeMode::Squash);
        let one = Preprocess::parse(&OPEN_CLIP.replace("[224, 224]", "256")).unwrap();
        assert_eq!(one.size, (256, 256));
    }

    #[test]
    fn bad_preprocess_cfg_says_what() {
        for (from, to, want) in [
            (
                "\"fill_color\"",
                "\"fill_colour\"",
                "unknown field `fill_colour`",
            ),
            ("[224, 224]", "[0, 224]", "size 0x224"),
            ("0.26862954", "-1", "std"),
            ("0.48145466, ", "", "mean has 2 values"),
            ("\"bicubic\"", "\"bilinear\"", "interpolation \"bilinear\""),
            ("\"shortest\"", "\"longest\"", "resize_mode \"longest\""),
            ("\"RGB\"", "\"L\"", "mode \"L\""),
        ] {
            let text = OPEN_CLIP.replace(from, to);
            let e = Preprocess::parse(&text).unwrap_err();
            assert!(e.contains(want), "{from} -> {to}: {e}");
        }
    }

    #[test]
    fn tokenizer_kinds() {
        let mut vocab = serde_json::Map::new();
        for i in 0..49406u32 {
            vocab.insert(format!("t{i}"), i.into());
        }
        vocab.insert("<|startoftext|>".into(), SOT.into());
        vocab.insert("<|endoftext|>".into(), EOT.into());
        let clip = serde_json::json!({"model": {"type": "BPE", "vocab": vocab}}).to_string();
        assert_eq!(classify_tokenizer(&clip), Ok(TokenizerKind::ClipBpe));
        let spm = r#"{"model": {"type": "Unigram", "vocab": [["<pad>", 0.0]]}}"#;
        assert!(classify_tokenizer(spm)
            .unwrap_err()
            .contains("sentencepiece"));
        assert!(classify_tokenizer("{\"model\": ")
            .unwrap_err()
            .contains("not a tokenizer file"));
        assert!(classify_tokenizer("{}")
            .unwrap_err()
            .contains("no \"model\""));
    }

    #[test]
    fn roots() {
        assert_eq!(
            root_of(Path::new("/m/x/visual/model.onnx")),
            Some(PathBuf::from("/m/x"))
        );
        assert_eq!(root_of(Path::new("/m/x/image.onnx")), None);
        assert_eq!(root_of(Path::new("/m/x/other/model.onnx")), None);
    }
}
