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
use clip::scoring::Scoring;
use clip::tokenizer::hf::HfTokenizer;
use clip::tokenizer::TextTokenizer;
use clip::{ResizeMode, CONTEXT_LENGTH, EOT, SOT};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CONFIG_FILE: &str = "config.json";
pub const PREPROCESS_FILE: &str = "visual/preprocess_cfg.json";
pub const TOKENIZER_FILE: &str = "textual/tokenizer.json";
pub const TOKENIZER_CONFIG_FILE: &str = "textual/tokenizer_config.json";
/// Written by `hailo-clip models fetch` from the catalog: what Immich's files do not say (a
/// SigLIP model's trained logit scale and bias).
pub const CATALOG_ENTRY_FILE: &str = "catalog-entry.json";

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
    /// Present in SigLIP configs: the model is trained for sigmoid scoring.
    #[serde(default)]
    pub init_logit_bias: Option<f32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub context_length: Option<usize>,
    #[serde(default)]
    pub hf_tokenizer_name: Option<String>,
    #[serde(default)]
    pub tokenizer_kwargs: Option<serde_json::Value>,
}

impl ModelConfig {
    pub fn load(root: &Path) -> Result<Self, BackendError> {
        let path = root.join(CONFIG_FILE);
        let c: ModelConfig = serde_json::from_str(&read(&path)?)
            .map_err(|e| setup(&path, format!("not an open_clip model config: {e}")))?;
        if c.embed_dim == 0 {
            return Err(setup(&path, "embed_dim is 0"));
        }
        let ctx = c.context_length();
        if ctx == 0 || ctx > CONTEXT_LENGTH {
            return Err(setup(
                &path,
                format!("text_cfg.context_length is {ctx}; the service takes 1 to {CONTEXT_LENGTH} tokens"),
            ));
        }
        Ok(c)
    }

    pub fn context_length(&self) -> usize {
        self.text_cfg.context_length.unwrap_or(CONTEXT_LENGTH)
    }

    /// open_clip's `tokenizer_kwargs: {clean: canonicalize}` (SigLIP).
    pub fn canonicalize(&self) -> bool {
        self.text_cfg
            .tokenizer_kwargs
            .as_ref()
            .and_then(|k| k.get("clean"))
            .and_then(|c| c.as_str())
            == Some("canonicalize")
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
    /// Anything else (described): run by the tokenizers library from the file.
    Other(String),
}

/// The tokenizer the text encoder needs: CLIP's own, or the file's through the tokenizers
/// library (then textual/tokenizer_config.json must name the pad token, as Immich reads it).
pub fn tokenizer(root: &Path, config: &ModelConfig) -> Result<TextTokenizer, BackendError> {
    let path = root.join(TOKENIZER_FILE);
    let json = read(&path)?;
    let ctx = config.context_length();
    match classify_tokenizer(&json).map_err(|e| setup(&path, e))? {
        TokenizerKind::ClipBpe if ctx == CONTEXT_LENGTH => Ok(TextTokenizer::ClipBpe),
        TokenizerKind::ClipBpe => Err(setup(
            &path,
            format!(
                "CLIP's BPE with a {ctx}-token context is not supported (only {CONTEXT_LENGTH})"
            ),
        )),
        TokenizerKind::Other(_) => {
            let cfg_path = root.join(TOKENIZER_CONFIG_FILE);
            let cfg: serde_json::Value = serde_json::from_str(&read(&cfg_path)?)
                .map_err(|e| setup(&cfg_path, format!("not JSON: {e}")))?;
            let pad = pad_token(&cfg).ok_or_else(|| {
                setup(
                    &cfg_path,
                    "no pad_token: the text encoder's padding is unknown",
                )
            })?;
            let t = HfTokenizer::from_json(
                &path.display().to_string(),
                &json,
                ctx,
                &pad,
                config.canonicalize(),
            )
            .map_err(|e| setup(&path, e))?;
            Ok(TextTokenizer::HuggingFace(Arc::new(t)))
        }
    }
}

/// `pad_token` as transformers writes it: a string or an added-token object.
fn pad_token(cfg: &serde_json::Value) -> Option<String> {
    match cfg.get("pad_token")? {
        serde_json::Value::String(s) => Some(s.clone()),
        v => v.get("content")?.as_str().map(str::to_owned),
    }
}

/// The model's scoring: softmax over 100 x cosine for CLIP; for a SigLIP config (it has
/// `init_logit_bias`), the trained scale and bias from catalog-entry.json, which Immich's files
/// lack. Without them the model is refused rather than scored wrong.
pub fn scoring(root: &Path, config: &ModelConfig) -> Result<Scoring, BackendError> {
    let entry_path = root.join(CATALOG_ENTRY_FILE);
    let entry: Option<serde_json::Value> = match std::fs::read_to_string(&entry_path) {
        Ok(t) => Some(
            serde_json::from_str(&t).map_err(|e| setup(&entry_path, format!("not JSON: {e}")))?,
        ),
        Err(_) => None,
    };
    let s = entry.as_ref().and_then(|e| e.get("scoring"));
    let num = |k: &str| {
        s.and_then(|s| s.get(k))
            .and_then(|v| v.as_f64())
            .map(|v| v as f32)
    };
    let kind = s.and_then(|s| s.get("kind")).and_then(|k| k.as_str());
    match (kind, config.init_logit_bias) {
        (Some("sigmoid"), _) | (None, Some(_)) => match (num("logit_scale"), num("logit_bias")) {
            (Some(logit_scale), Some(logit_bias)) if logit_scale.is_finite() && logit_bias.is_finite() => {
                Ok(Scoring::Sigmoid { logit_scale, logit_bias })
            }
            _ => Err(setup(
                &entry_path,
                format!(
                    "{} describes a sigmoid-scored (SigLIP) model, whose trained logit_scale and \
                     logit_bias are not in Immich's files; put them in this file as \
                     {{\"scoring\": {{\"kind\": \"sigmoid\", \"logit_scale\": ..., \"logit_bias\": ...}}}}",
                    root.join(CONFIG_FILE).display()
                ),
            )),
        },
        (Some("softmax") | None, None) => Ok(Scoring::Softmax {
            logit_scale: num("logit_scale").unwrap_or(clip::scoring::LOGIT_SCALE),
        }),
        (Some("softmax"), Some(_)) => Err(setup(
            &entry_path,
            "says softmax scoring but config.json describes a sigmoid-trained (SigLIP) model",
        )),
        (Some(other), _) => Err(setup(
            &entry_path,
            format!("scoring kind {other:?} is not supported (softmax or sigmoid)"),
        )),
    }
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
    Ok(TokenizerKind::Other(match kind {
        "Unigram" => "sentencepiece (Unigram), as SigLIP and XLM-RoBERTa use".to_string(),
        "BPE" => format!("a BPE of {size} tokens that is not CLIP's"),
        other => other.to_string(),
    }))
}

/// Everything outside the graphs, read and checked together.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub config: ModelConfig,
    /// Set when the image encoder is used.
    pub preprocess: Option<Preprocess>,
    /// Set when the text encoder is used.
    pub tokenizer: Option<TextTokenizer>,
    pub scoring: Scoring,
}

impl Layout {
    pub fn load(root: &Path, image: bool, text: bool) -> Result<Self, BackendError> {
        let config = ModelConfig::load(root)?;
        let preprocess = image.then(|| Preprocess::load(root)).transpose()?;
        let tokenizer = text.then(|| tokenizer(root, &config)).transpose()?;
        let scoring = scoring(root, &config)?;
        Ok(Layout {
            root: root.to_path_buf(),
            config,
            preprocess,
            tokenizer,
            scoring,
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
        assert!(
            matches!(classify_tokenizer(spm), Ok(TokenizerKind::Other(d)) if d.contains("sentencepiece"))
        );
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
