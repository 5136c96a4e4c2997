//! What the test binaries share: the real server on a free loopback port and an HTTP client
//! for it, fixtures, a backend that counts its calls, and (submodules) numeric comparisons and
//! the ONNX fixture model.
#![allow(dead_code)]

pub mod numeric;
pub mod onnx;

use backend::{Backend, BackendError};
use base64::Engine as _;
use clip::{ModelInfo, PreparedImage, TokenIds};
use config::{BackendKind, Settings};
use engine::Engine;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub struct TestServer {
    pub url: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.at(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POSTs raw bytes under the given content type (malformed bodies, forms, multipart).
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(self.at(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POSTs as a client that gives up after `after` (it hangs up mid-request): the error if it
    /// did, the response if one came in time.
    pub async fn post_giving_up(
        &self,
        path: &str,
        body: serde_json::Value,
        after: std::time::Duration,
    ) -> reqwest::Result<reqwest::Response> {
        let impatient = reqwest::Client::builder().timeout(after).build().unwrap();
        impatient.post(self.at(path)).json(&body).send().await
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(self.at(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client
            .put(self.at(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn delete(&self, path: &str) -> u16 {
        let r = self.client.delete(self.at(path)).send().await.unwrap();
        r.status().as_u16()
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.client.get(self.at(path)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

/// Mock settings on 127.0.0.1:0 with a small model so tests run fast.
pub fn mock_settings() -> Settings {
    let mut s = Settings::default();
    s.server.host = "127.0.0.1".into();
    s.server.port = 0;
    s.backend.kind = BackendKind::Mock;
    s.backend.mock.embedding_dimension = 64;
    s.backend.mock.image_size = 32;
    s.logging.level = "warn".into();
    s
}

pub async fn start(settings: Settings) -> TestServer {
    let engine = Engine::start(settings).expect("engine");
    start_engine(engine).await
}

pub async fn start_engine(engine: Arc<Engine>) -> TestServer {
    start_models(engine::Models::of(vec![engine])).await
}

/// The server for several models (`Models::start(&settings)` for a `models:` config).
pub async fn start_models(models: Arc<engine::Models>) -> TestServer {
    let listener = hailo_clip_http::bind(models.default_engine().settings())
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(hailo_clip_http::serve_models(
        models,
        listener,
        async move {
            let _ = rx.await;
        },
        Instant::now(),
    ));
    let client = reqwest::Client::new();
    // Ready means /health answers; warm-up may still be settling the first few ms.
    wait_while_loading(&client, &url, 500, std::time::Duration::from_millis(5)).await;
    TestServer {
        url,
        client,
        stop: Some(tx),
        task: Some(task),
    }
}

/// Polls /health while it says the model is loading, at most `tries` times; stops early when the
/// listener is gone (start-up failed: the caller looks at `stop()`'s error).
pub async fn wait_while_loading(
    client: &reqwest::Client,
    url: &str,
    tries: usize,
    pause: std::time::Duration,
) {
    for _ in 0..tries {
        match client.get(format!("{url}/health")).send().await {
            Ok(r) if r.status().as_u16() == 503 => {
                if !r.text().await.unwrap_or_default().contains("loading") {
                    return;
                }
            }
            Ok(_) | Err(_) => return,
        }
        tokio::time::sleep(pause).await;
    }
}

/// The real server on a mock backend wrapped in [`Counting`], without warm-up (so only the
/// requests' own work is counted): the server, text encoder calls, texts encoded.
pub async fn counting_server(mut s: Settings) -> (TestServer, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    s.backend.warmup = false;
    let text_calls = Arc::new(AtomicUsize::new(0));
    let texts = Arc::new(AtomicUsize::new(0));
    let backend = Counting {
        inner: Box::new(backend::mock::MockBackend::new(
            &s.clip.model,
            s.backend.mock.clone(),
        )),
        image_calls: Arc::new(AtomicUsize::new(0)),
        text_calls: text_calls.clone(),
        texts_encoded: texts.clone(),
    };
    let engine = Engine::with_backend(s, Box::new(backend));
    (start_engine(engine).await, text_calls, texts)
}

/// Wraps a backend and counts what reaches it.
pub struct Counting {
    pub inner: Box<dyn Backend>,
    pub image_calls: Arc<AtomicUsize>,
    pub text_calls: Arc<AtomicUsize>,
    pub texts_encoded: Arc<AtomicUsize>,
}

impl Backend for Counting {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn load(&mut self) -> Result<ModelInfo, BackendError> {
        self.inner.load()
    }
    fn encode_images(&mut self, images: &[PreparedImage]) -> Result<Vec<Vec<f32>>, BackendError> {
        self.image_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.encode_images(images)
    }
    fn encode_texts(&mut self, texts: &[TokenIds]) -> Result<Vec<Vec<f32>>, BackendError> {
        self.text_calls.fetch_add(1, Ordering::SeqCst);
        self.texts_encoded.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.encode_texts(texts)
    }
    fn versions(&self) -> BTreeMap<String, String> {
        self.inner.versions()
    }
}

pub fn png_b64(w: u32, h: u32, seed: u8) -> String {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8).wrapping_mul(seed),
            (y as u8).wrapping_add(seed),
            seed,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

pub fn fixture(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

pub fn file_b64(path: &std::path::Path) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

pub fn norm(v: &serde_json::Value) -> f64 {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().powi(2))
        .sum::<f64>()
        .sqrt()
}
