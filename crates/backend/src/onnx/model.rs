//! What an encoder file takes and gives, read from the graph (and the optional model.json that
//! tools/export-onnx.py writes beside it), checked before the first run so that a wrong file is a
//! start-up error naming the file rather than a failure on the first request.

use crate::BackendError;
use clip::CONTEXT_LENGTH;
use ort::session::Session;
use ort::value::{Outlet, TensorElementType, ValueType};
use std::path::{Path, PathBuf};

/// OpenAI CLIP's normalisation, used when no model.json says otherwise.
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// Batch caps when the batch axis is dynamic: past these, per-item time stops improving on a
/// small CPU while memory keeps growing (activations of RN50x4 at batch 8 are ~300 MB).
pub const DEFAULT_MAX_IMAGE_BATCH: usize = 8;
pub const DEFAULT_MAX_TEXT_BATCH: usize = 16;

/// The parts of tools/export-onnx.py's model.json this backend uses; other keys are ignored.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Sidecar {
    #[serde(default)]
    pub mean: Option<[f32; 3]>,
    #[serde(default)]
    pub std: Option<[f32; 3]>,
    #[serde(default)]
    pub image_size: Option<u32>,
    #[serde(default)]
    pub image: Option<SidecarIo>,
    #[serde(default)]
    pub text: Option<SidecarIo>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SidecarIo {
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
}

impl Sidecar {
    /// model.json beside `model`, if there is one; a present but unreadable file is an error,
    /// since it would otherwise silently change the normalisation.
    pub fn beside(model: &Path) -> Result<(Option<PathBuf>, Sidecar), BackendError> {
        let path = model.with_file_name("model.json");
        if !path.exists() {
            return Ok((None, Sidecar::default()));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| BackendError::Setup(format!("cannot read {}: {e}", path.display())))?;
        let s: Sidecar = serde_json::from_str(&text).map_err(|e| {
            BackendError::Setup(format!(
                "{} is not valid model metadata: {e}",
                path.display()
            ))
        })?;
        for (what, v) in [("mean", s.mean), ("std", s.std)] {
            if let Some(v) = v {
                if v.iter().any(|x| !x.is_finite())
                    || (what == "std" && v.iter().any(|&x| x <= 0.0))
                {
                    return Err(BackendError::Setup(format!(
                        "{}: {what} {v:?} is not usable",
                        path.display()
                    )));
                }
            }
        }
        Ok((Some(path), s))
    }
}

/// One dimension of a graph input or output; `None` when the graph leaves it open.
pub type Dim = Option<usize>;

#[derive(Debug, Clone)]
pub struct TensorSpec {
    pub name: String,
    pub ty: TensorElementType,
    pub dims: Vec<Dim>,
}

impl TensorSpec {
    fn of(outlet: &Outlet, file: &Path) -> Result<Self, BackendError> {
        match outlet.dtype() {
            ValueType::Tensor { ty, shape, .. } => Ok(TensorSpec {
                name: outlet.name().to_string(),
                ty: *ty,
                dims: shape
                    .iter()
                    .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
                    .collect(),
            }),
            other => Err(BackendError::Setup(format!(
                "{}: {:?} is a {other}, not a tensor",
                file.display(),
                outlet.name()
            ))),
        }
    }

    pub fn describe(&self) -> String {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| d.map_or("?".to_string(), |d| d.to_string()))
            .collect();
        format!("{:?} {:?} [{}]", self.name, self.ty, dims.join(", "))
    }
}

fn list(outlets: &[Outlet]) -> String {
    outlets
        .iter()
        .map(|o| format!("{:?}", o.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Picks the graph input and output to use: the names model.json gives, else the only one,
/// else the conventional name (`pixel_values`/`image_embeds`, `input_ids`/`text_embeds`).
pub fn io(
    session: &Session,
    file: &Path,
    sidecar: Option<&SidecarIo>,
    conventional: (&str, &str),
) -> Result<(TensorSpec, TensorSpec), BackendError> {
    let pick = |outlets: &[Outlet], declared: Option<&String>, conventional: &str, what: &str| {
        let found = match declared {
            Some(name) => outlets.iter().find(|o| o.name() == name).ok_or_else(|| {
                format!(
                    "model.json names the {what} {name:?} but the graph's {what}s are {}",
                    list(outlets)
                )
            }),
            None if outlets.len() == 1 => Ok(&outlets[0]),
            None => outlets
                .iter()
                .find(|o| o.name() == conventional)
                .ok_or_else(|| {
                    format!(
                        "the graph has {what}s {} and none is named {conventional:?}",
                        list(outlets)
                    )
                }),
        };
        found
            .map_err(|m| BackendError::Setup(format!("{}: {m}", file.display())))
            .and_then(|o| TensorSpec::of(o, file))
    };
    let input = pick(
        session.inputs(),
        sidecar.and_then(|s| s.input.as_ref()),
        conventional.0,
        "input",
    )?;
    if session.inputs().len() > 1 {
        return Err(BackendError::Setup(format!(
            "{}: the graph takes inputs {}; a CLIP encoder here takes exactly one ({:?})",
            file.display(),
            list(session.inputs()),
            input.name
        )));
    }
    let output = pick(
        session.outputs(),
        sidecar.and_then(|s| s.output.as_ref()),
        conventional.1,
        "output",
    )?;
    Ok((input, output))
}

/// Batch axis of an input: a fixed size is both the maximum and what every run must be padded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    Dynamic(usize),
    Fixed(usize),
}

impl Batch {
    pub fn of(dim: Dim, default_max: usize) -> Self {
        match dim {
            Some(n) => Batch::Fixed(n),
            None => Batch::Dynamic(default_max),
        }
    }

    pub fn max(self) -> usize {
        match self {
            Batch::Dynamic(n) | Batch::Fixed(n) => n,
        }
    }

    /// Rows to run for `n` items.
    pub fn run_rows(self, n: usize) -> usize {
        match self {
            Batch::Dynamic(_) => n,
            Batch::Fixed(k) => k,
        }
    }
}

/// Image encoder input: float32 NCHW with 3 channels. Returns (batch dim, height, width) where
/// height/width are `None` when the graph leaves them open.
pub fn check_image_input(spec: &TensorSpec, file: &Path) -> Result<(Dim, Dim, Dim), BackendError> {
    let bad = |why: &str| {
        BackendError::Setup(format!(
            "{}: image input is {}; {why} (expected float32 [batch, 3, height, width], CLIP-normalised RGB)",
            file.display(),
            spec.describe()
        ))
    };
    if spec.ty != TensorElementType::Float32 {
        return Err(bad("its element type is not float32"));
    }
    if spec.dims.len() != 4 {
        return Err(bad("it is not rank 4"));
    }
    if spec.dims[1] != Some(3) {
        return Err(bad(
            "channel axis 1 is not 3 (channels-last exports are not supported)",
        ));
    }
    Ok((spec.dims[0], spec.dims[2], spec.dims[3]))
}

/// Text encoder input: int64 or int32 [batch, context], context `expect` (77 for CLIP; a
/// SigLIP-style model's own, from its config). Returns the batch dim.
pub fn check_text_input(
    spec: &TensorSpec,
    file: &Path,
    expect: usize,
) -> Result<Dim, BackendError> {
    let bad = |why: &str| {
        BackendError::Setup(format!(
            "{}: text input is {}; {why} (expected int64 [batch, {expect}] token ids)",
            file.display(),
            spec.describe()
        ))
    };
    if !matches!(spec.ty, TensorElementType::Int64 | TensorElementType::Int32) {
        return Err(bad("its element type is not an integer type"));
    }
    if spec.dims.len() != 2 {
        return Err(bad("it is not rank 2"));
    }
    if spec.dims[1].is_some_and(|n| n != expect) {
        return Err(bad(&format!("its context length is not {expect}")));
    }
    if expect > CONTEXT_LENGTH {
        return Err(bad(&format!(
            "contexts past {CONTEXT_LENGTH} tokens are not supported"
        )));
    }
    Ok(spec.dims[0])
}

/// Encoder output: float32 [batch, dim]; the dimension may be open (then learned from a probe run).
pub fn check_output(spec: &TensorSpec, file: &Path) -> Result<Dim, BackendError> {
    if spec.ty != TensorElementType::Float32 || spec.dims.len() != 2 {
        return Err(BackendError::Setup(format!(
            "{}: output is {}; expected float32 [batch, embedding_dimension]",
            file.display(),
            spec.describe()
        )));
    }
    Ok(spec.dims[1])
}
