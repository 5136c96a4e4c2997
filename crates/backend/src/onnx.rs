//! Real CLIP on the CPU through ONNX Runtime (ort, `load-dynamic`): the reference backend for
//! machines without the NPU, and the text encoder beside the Hailo image encoder.
//!
//! The image and text encoders are separate ONNX files (tools/export-onnx.py writes both plus a
//! model.json). Everything the engine needs — input size, embedding dimension, batch axis — is
//! read from the graphs at `load()`, so a wrong file fails at start-up with its path in the message.

pub mod immich;
pub mod model;
pub mod runtime;

use crate::{Backend, BackendError};
use clip::{ModelInfo, PreparedImage, ResizeMode, TokenIds, CONTEXT_LENGTH};
use config::{BackendKind, Settings};
use model::{Batch, Sidecar, TensorSpec};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType};
use runtime::LibrarySource;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

pub use model::{CLIP_MEAN, CLIP_STD, DEFAULT_MAX_IMAGE_BATCH, DEFAULT_MAX_TEXT_BATCH};

/// Everything the backend needs, resolved from the settings (or built by hand in tests and benches).
#[derive(Debug, Clone)]
pub struct OnnxOptions {
    /// Reported as ModelInfo.name (the engine keys its text cache on it).
    pub model_name: String,
    /// None when another backend encodes images.
    pub image_model: Option<PathBuf>,
    /// None when another backend encodes texts.
    pub text_model: Option<PathBuf>,
    pub library: LibrarySource,
    /// Intra-op threads for each session (the two never run at once: one device thread).
    pub threads: usize,
    /// Input size for image graphs whose height/width are open and have no model.json: clip.image_size.
    pub image_size_hint: Option<u32>,
    /// clip.resize_mode, checked against an Immich model's preprocess_cfg.json (None: not checked).
    pub resize_mode: Option<ResizeMode>,
}

/// All cores but one, which stays with the HTTP side and preprocessing; at least one.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .saturating_sub(1)
        .max(1)
}

impl OnnxOptions {
    /// Encodes images when `backend.type` is onnx and texts when the text backend is onnx.
    pub fn from_settings(settings: &Settings) -> Self {
        let o = &settings.backend.onnx;
        let image = settings.backend.kind == BackendKind::Onnx;
        let text = settings.text_backend() == BackendKind::Onnx;
        OnnxOptions {
            model_name: settings.clip.model.clone(),
            image_model: image.then(|| settings.onnx_image_model()),
            text_model: text.then(|| settings.onnx_text_model()),
            library: LibrarySource::resolve(o.library_path.as_deref()),
            threads: o.threads.unwrap_or_else(default_threads),
            image_size_hint: settings.clip.image_size,
            resize_mode: Some(settings.clip.resize_mode),
        }
    }

    /// Both encoders from one directory holding image.onnx, text.onnx (and model.json).
    pub fn from_dir(dir: &Path, library: LibrarySource, threads: usize) -> Self {
        OnnxOptions {
            model_name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "onnx".into()),
            image_model: Some(dir.join(config::ONNX_IMAGE_FILE)),
            text_model: Some(dir.join(config::ONNX_TEXT_FILE)),
            library,
            threads,
            image_size_hint: None,
            resize_mode: None,
        }
    }
}

pub struct OnnxBackend {
    opts: OnnxOptions,
    image: Option<ImageEncoder>,
    text: Option<TextEncoder>,
    library_version: Option<String>,
}

impl OnnxBackend {
    pub fn new(opts: OnnxOptions) -> Self {
        Self {
            opts,
            image: None,
            text: None,
            library_version: None,
        }
    }

    pub fn options(&self) -> &OnnxOptions {
        &self.opts
    }

    /// The normalisation the image encoder applies, once loaded (for tests and diagnostics).
    pub fn image_normalisation(&self) -> Option<([f32; 3], [f32; 3])> {
        self.image.as_ref().map(|e| (e.mean, e.std))
    }

    /// Runs the image encoder on an already-normalised float NCHW tensor: the path the reference
    /// tests take with torch-preprocessed pixels, bypassing our u8 normalisation.
    pub fn encode_pixels(
        &mut self,
        pixels: &[f32],
        n: usize,
    ) -> Result<Vec<Vec<f32>>, BackendError> {
        let enc = self.image.as_mut().ok_or_else(not_loaded("image"))?;
        let (w, h) = enc.size;
        let per = 3 * w as usize * h as usize;
        if pixels.len() != n * per {
            return Err(BackendError::Input(format!(
                "{} floats given for {n} images of 3x{h}x{w}",
                pixels.len()
            )));
        }
        enc.check_batch(n)?;
        let rows = enc.batch.run_rows(n);
        let mut data = vec![0f32; rows * per];
        data[..pixels.len()].copy_from_slice(pixels);
        enc.run(data, rows, n)
    }

    fn session(&self, path: &Path) -> Result<Session, BackendError> {
        let threads = self.opts.threads;
        let err = |e: String| BackendError::Setup(format!("cannot load {}: {e}", path.display()));
        let built = catch_unwind(AssertUnwindSafe(|| -> Result<Session, String> {
            Session::builder()
                .map_err(|e| e.to_string())?
                .with_optimization_level(GraphOptimizationLevel::All)
                .map_err(|e| e.to_string())?
                .with_intra_threads(threads)
                .map_err(|e| e.to_string())?
                .with_inter_threads(1)
                .map_err(|e| e.to_string())?
                .with_parallel_execution(false)
                .map_err(|e| e.to_string())?
                .commit_from_file(path)
                .map_err(|e| e.to_string())
        }));
        match built {
            Ok(r) => r.map_err(err),
            Err(p) => Err(err(runtime::panic_message(&p))),
        }
    }
}

fn not_loaded(what: &'static str) -> impl FnOnce() -> BackendError {
    move || {
        BackendError::Setup(format!(
            "the onnx backend has no {what} encoder loaded (not configured for {what}s, or load() has not succeeded)"
        ))
    }
}

fn require_file(path: &Path, what: &str, key: &str) -> Result<(), BackendError> {
    if path.is_file() {
        return Ok(());
    }
    Err(BackendError::Setup(format!(
        "{what} encoder {} not found (set backend.onnx.{key} or backend.onnx.model_dir, or put \
         the model in the models directory); `hailo-clip models fetch NAME --backend onnx` \
         downloads one, tools/export-onnx.py exports one, see docs/models.md",
        path.display()
    )))
}

impl Backend for OnnxBackend {
    fn name(&self) -> String {
        "onnx".into()
    }

    fn unload(&mut self) {
        self.image = None;
        self.text = None;
    }

    fn load(&mut self) -> Result<ModelInfo, BackendError> {
        // A reload (recovery) starts from nothing, so a half-loaded state is never used.
        self.image = None;
        self.text = None;
        if self.opts.image_model.is_none() && self.opts.text_model.is_none() {
            return Err(BackendError::Setup(
                "the onnx backend is configured for neither images nor texts".into(),
            ));
        }
        if let Some(p) = &self.opts.image_model {
            require_file(p, "image", "image_model")?;
        }
        if let Some(p) = &self.opts.text_model {
            require_file(p, "text", "text_model")?;
        }
        // Immich's layout: everything outside the graphs is read and checked before the
        // (slower) sessions are built.
        let image_root = self.opts.image_model.as_deref().and_then(immich::root_of);
        let text_root = self.opts.text_model.as_deref().and_then(immich::root_of);
        let layout = match image_root.as_ref().or(text_root.as_ref()) {
            Some(root) => Some(immich::Layout::load(
                root,
                image_root.is_some(),
                text_root.is_some(),
            )?),
            None => None,
        };
        if let (Some(pre), Some(want)) = (
            layout.as_ref().and_then(|l| l.preprocess.as_ref()),
            self.opts.resize_mode,
        ) {
            if pre.resize_mode != want {
                let name = |m: ResizeMode| match m {
                    ResizeMode::Squash => "squash",
                    ResizeMode::CenterCrop => "center_crop",
                };
                return Err(BackendError::Setup(format!(
                    "{}: the model was trained with resize_mode {} but clip.resize_mode is {}; \
                     set clip.resize_mode: {}",
                    layout
                        .as_ref()
                        .unwrap()
                        .root
                        .join(immich::PREPROCESS_FILE)
                        .display(),
                    name(pre.resize_mode),
                    name(want),
                    name(pre.resize_mode)
                )));
            }
        }
        let (_env, version) = runtime::environment(&self.opts.library)?;
        self.library_version = Some(version);

        let image = match self.opts.image_model.clone() {
            Some(p) => {
                let pre = layout.as_ref().and_then(|l| l.preprocess.as_ref());
                let sidecar = match pre {
                    Some(pre) => pre.sidecar(),
                    None => Sidecar::beside(&p)?.1,
                };
                let enc =
                    ImageEncoder::load(self.session(&p)?, &p, sidecar, self.opts.image_size_hint)?;
                if let Some(pre) = pre {
                    if enc.size != pre.size {
                        return Err(BackendError::Setup(format!(
                            "{}: the graph takes {}x{} images but {} says {}x{}",
                            p.display(),
                            enc.size.0,
                            enc.size.1,
                            immich::PREPROCESS_FILE,
                            pre.size.0,
                            pre.size.1
                        )));
                    }
                }
                Some(enc)
            }
            None => None,
        };
        let text = match self.opts.text_model.clone() {
            Some(p) => {
                let sidecar = match text_root {
                    Some(_) => Sidecar::default(),
                    None => Sidecar::beside(&p)?.1,
                };
                let ctx = layout
                    .as_ref()
                    .map_or(CONTEXT_LENGTH, |l| l.config.context_length());
                Some(TextEncoder::load(self.session(&p)?, &p, sidecar, ctx)?)
            }
            None => None,
        };
        if let Some(l) = &layout {
            if let Some(i) = &image {
                l.check_dim(&i.path, i.dim)?;
            }
            if let Some(t) = &text {
                l.check_dim(&t.path, t.dim)?;
            }
        }
        if let (Some(i), Some(t)) = (&image, &text) {
            if i.dim != t.dim {
                return Err(BackendError::Setup(format!(
                    "image encoder {} gives {}-dimensional embeddings but text encoder {} gives {}; \
                     they must come from the same CLIP model",
                    i.path.display(),
                    i.dim,
                    t.path.display(),
                    t.dim
                )));
            }
        }
        let info = ModelInfo {
            name: self.opts.model_name.clone(),
            embedding_dimension: image
                .as_ref()
                .map(|i| i.dim)
                .or(text.as_ref().map(|t| t.dim))
                .unwrap_or(0),
            image_size: image.as_ref().map(|i| i.size).unwrap_or((0, 0)),
            max_image_batch: image.as_ref().map(|i| i.batch.max()).unwrap_or(0),
            max_text_batch: text.as_ref().map(|t| t.batch.max()).unwrap_or(0),
            tokenizer: layout
                .as_ref()
                .and_then(|l| l.tokenizer.clone())
                .unwrap_or_default(),
            scoring: layout.as_ref().map(|l| l.scoring).unwrap_or_default(),
        };
        tracing::info!(
            image = ?self.opts.image_model,
            text = ?self.opts.text_model,
            threads = self.opts.threads,
            onnxruntime = ?self.library_version,
            ?info,
            "onnx backend loaded"
        );
        self.image = image;
        self.text = text;
        Ok(info)
    }

    fn encode_images(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError> {
        let enc = self.image.as_mut().ok_or_else(not_loaded("image"))?;
        enc.encode(images)
    }

    fn encode_texts(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError> {
        let enc = self.text.as_mut().ok_or_else(not_loaded("text"))?;
        enc.encode(texts)
    }

    fn versions(&self) -> BTreeMap<String, String> {
        let mut v = BTreeMap::new();
        if let Some(ver) = &self.library_version {
            v.insert("onnxruntime".to_string(), ver.clone());
        }
        v
    }
}

/// Output rows `[rows, dim]` to the first `n` embeddings, checking the shape the run produced.
fn rows_of(
    session: &mut Session,
    input: Tensor<impl ort::value::PrimitiveTensorElementType + std::fmt::Debug>,
    names: (&str, &str),
    rows: usize,
    n: usize,
    dim: Option<usize>,
) -> Result<Vec<Vec<f32>>, BackendError> {
    let outputs = session
        .run(ort::inputs![names.0 => input])
        .map_err(|e| BackendError::Fault(format!("onnxruntime run failed: {e}")))?;
    let value = outputs
        .get(names.1)
        .ok_or_else(|| BackendError::Fault(format!("run produced no output {:?}", names.1)))?;
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| BackendError::Fault(format!("output {:?}: {e}", names.1)))?;
    let got: Vec<i64> = shape.to_vec();
    let ok = got.len() == 2
        && got[0] as usize == rows
        && dim.is_none_or(|d| got[1] as usize == d)
        && got[1] > 0;
    if !ok {
        return Err(BackendError::Fault(format!(
            "output {:?} has shape {got:?}; expected [{rows}, {}]",
            names.1,
            dim.map_or("dim".to_string(), |d| d.to_string())
        )));
    }
    let d = got[1] as usize;
    Ok(data.chunks_exact(d).take(n).map(<[f32]>::to_vec).collect())
}

struct ImageEncoder {
    path: PathBuf,
    session: Session,
    input: TensorSpec,
    output: TensorSpec,
    batch: Batch,
    /// (width, height)
    size: (u32, u32),
    dim: usize,
    mean: [f32; 3],
    std: [f32; 3],
    /// u8 -> normalised float per channel, computed as torchvision does ((x/255 - mean)/std in f32),
    /// so our values equal torch's bit for bit given the same resized pixels.
    lut: [[f32; 256]; 3],
}

impl ImageEncoder {
    fn load(
        session: Session,
        path: &Path,
        sidecar: Sidecar,
        size_hint: Option<u32>,
    ) -> Result<Self, BackendError> {
        let (input, output) = model::io(
            &session,
            path,
            sidecar.image.as_ref(),
            ("pixel_values", "image_embeds"),
        )?;
        let (batch_dim, h, w) = model::check_image_input(&input, path)?;
        let out_dim = model::check_output(&output, path)?;
        let open_size = sidecar.image_size.or(size_hint);
        let size = match (w, h) {
            (Some(w), Some(h)) => (w as u32, h as u32),
            _ => match open_size {
                Some(s) => (w.map_or(s, |w| w as u32), h.map_or(s, |h| h as u32)),
                None => {
                    return Err(BackendError::Setup(format!(
                        "{}: image input {} leaves its size open and there is no model.json with image_size; \
                         set clip.image_size",
                        path.display(),
                        input.describe()
                    )))
                }
            },
        };
        let mean = sidecar.mean.unwrap_or(CLIP_MEAN);
        let std = sidecar.std.unwrap_or(CLIP_STD);
        let mut lut = [[0f32; 256]; 3];
        for c in 0..3 {
            for (x, slot) in lut[c].iter_mut().enumerate() {
                *slot = (x as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        let mut enc = ImageEncoder {
            path: path.to_path_buf(),
            session,
            input,
            output,
            batch: Batch::of(batch_dim, DEFAULT_MAX_IMAGE_BATCH),
            size,
            dim: out_dim.unwrap_or(0),
            mean,
            std,
            lut,
        };
        if out_dim.is_none() {
            // The graph leaves the embedding size open: one run on a mean-grey image settles it.
            let rows = enc.batch.run_rows(1);
            let v = enc.run(vec![0f32; rows * enc.per_image()], rows, 1)?;
            enc.dim = v[0].len();
        }
        Ok(enc)
    }

    fn per_image(&self) -> usize {
        3 * self.size.0 as usize * self.size.1 as usize
    }

    fn check_batch(&self, n: usize) -> Result<(), BackendError> {
        if n > self.batch.max() {
            return Err(BackendError::Input(format!(
                "{n} images in one batch; the image encoder takes at most {}",
                self.batch.max()
            )));
        }
        Ok(())
    }

    fn encode(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError> {
        let n = images.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.check_batch(n)?;
        let (w, h) = self.size;
        let plane = w as usize * h as usize;
        if let Some(bad) = images
            .iter()
            .find(|i| i.width != w || i.height != h || i.rgb.len() != plane * 3)
        {
            return Err(BackendError::Input(format!(
                "image is {}x{} ({} bytes), the image encoder takes {w}x{h} RGB",
                bad.width,
                bad.height,
                bad.rgb.len()
            )));
        }
        let rows = self.batch.run_rows(n);
        let mut data = vec![0f32; rows * 3 * plane];
        for (img, dst) in images.iter().zip(data.chunks_exact_mut(3 * plane)) {
            let (r, rest) = dst.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for (i, px) in img.rgb.chunks_exact(3).enumerate() {
                r[i] = self.lut[0][px[0] as usize];
                g[i] = self.lut[1][px[1] as usize];
                b[i] = self.lut[2][px[2] as usize];
            }
        }
        self.run(data, rows, n)
    }

    fn run(
        &mut self,
        data: Vec<f32>,
        rows: usize,
        n: usize,
    ) -> Result<Vec<Vec<f32>>, BackendError> {
        let (w, h) = self.size;
        let tensor = Tensor::from_array(([rows, 3, h as usize, w as usize], data))
            .map_err(|e| BackendError::Fault(format!("cannot build the image tensor: {e}")))?;
        let dim = (self.dim > 0).then_some(self.dim);
        rows_of(
            &mut self.session,
            tensor,
            (&self.input.name, &self.output.name),
            rows,
            n,
            dim,
        )
    }
}

struct TextEncoder {
    path: PathBuf,
    session: Session,
    input: TensorSpec,
    output: TensorSpec,
    batch: Batch,
    dim: usize,
    /// Tokens per text the graph takes: the first this many of each `TokenIds`.
    context: usize,
}

impl TextEncoder {
    fn load(
        session: Session,
        path: &Path,
        sidecar: Sidecar,
        context: usize,
    ) -> Result<Self, BackendError> {
        let (input, output) = model::io(
            &session,
            path,
            sidecar.text.as_ref(),
            ("input_ids", "text_embeds"),
        )?;
        let batch_dim = model::check_text_input(&input, path, context)?;
        let out_dim = model::check_output(&output, path)?;
        let mut enc = TextEncoder {
            path: path.to_path_buf(),
            session,
            input,
            output,
            batch: Batch::of(batch_dim, DEFAULT_MAX_TEXT_BATCH),
            dim: out_dim.unwrap_or(0),
            context,
        };
        if out_dim.is_none() {
            // Id 0 is in every vocabulary; the run only settles the output size.
            let probe = [0u32; CONTEXT_LENGTH];
            enc.dim = enc.encode(&[probe])?[0].len();
        }
        Ok(enc)
    }

    fn encode(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError> {
        let n = texts.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        if n > self.batch.max() {
            return Err(BackendError::Input(format!(
                "{n} texts in one batch; the text encoder takes at most {}",
                self.batch.max()
            )));
        }
        let rows = self.batch.run_rows(n);
        let ctx = self.context;
        let shape = [rows, ctx];
        let names = (self.input.name.as_str(), self.output.name.as_str());
        let dim = (self.dim > 0).then_some(self.dim);
        let ids = texts.iter().flat_map(|t| t[..ctx].iter().copied());
        let pad = (rows - n) * ctx;
        let fault =
            |e: ort::Error| BackendError::Fault(format!("cannot build the text tensor: {e}"));
        if self.input.ty == TensorElementType::Int32 {
            let data: Vec<i32> = ids
                .map(|x| x as i32)
                .chain(std::iter::repeat_n(0, pad))
                .collect();
            let t = Tensor::from_array((shape, data)).map_err(fault)?;
            rows_of(&mut self.session, t, names, rows, n, dim)
        } else {
            let data: Vec<i64> = ids
                .map(i64::from)
                .chain(std::iter::repeat_n(0, pad))
                .collect();
            let t = Tensor::from_array((shape, data)).map_err(fault)?;
            rows_of(&mut self.session, t, names, rows, n, dim)
        }
    }
}
