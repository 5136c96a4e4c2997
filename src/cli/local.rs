//! `hailo-clip classify` and `hailo-clip embed`: the engine in-process, no server.

use super::logging;
use anyhow::Context;
use base64::Engine as _;
use config::Settings;
use engine::{ClassifyRequest, Engine};
use std::path::Path;
use std::sync::Arc;

pub struct Labels {
    pub labels: Vec<String>,
    pub negative_labels: Vec<String>,
    pub top_k: Option<usize>,
    pub template: Option<String>,
}

fn load_settings(path: Option<&Path>) -> anyhow::Result<Settings> {
    let (s, from) = Settings::load(path)?;
    match from {
        Some(p) => tracing::info!(config = %p.display(), "config loaded"),
        None => tracing::info!("no config file found; using defaults"),
    }
    Ok(s)
}

/// The engine without waiting on warm-up: the first call loads the model.
fn engine(config: Option<&Path>) -> anyhow::Result<Arc<Engine>> {
    let mut s = load_settings(config)?;
    s.backend.warmup = false;
    Engine::start(s).map_err(|e| anyhow::anyhow!("{e}"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn read_base64(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn classify(
    image: &Path,
    labels: Labels,
    json: bool,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    logging::init("warn");
    let image = read_base64(image)?;
    runtime()?.block_on(async move {
        let engine = engine(config)?;
        let out = engine
            .classify(ClassifyRequest {
                image,
                labels: labels.labels,
                top_k: labels.top_k,
                prompt_template: labels.template,
                templates: None,
                negative_labels: labels.negative_labels,
                threshold: None,
                label_set: None,
            })
            .await?;
        if json {
            println!(
                "{}",
                serde_json::json!({"result": out.value, "backend": engine.backend_name(), "inference_time_ms": out.inference_ms})
            );
        } else {
            for s in &out.value {
                println!("{:>8.4}  {:>7.4}  {}", s.score, s.similarity, s.label);
            }
            eprintln!(
                "backend {} | inference {:.1} ms",
                engine.backend_name(),
                out.inference_ms
            );
        }
        anyhow::Ok(())
    })
}

pub fn embed(
    image: Option<&Path>,
    text: Option<String>,
    config: Option<&Path>,
) -> anyhow::Result<()> {
    logging::init("warn");
    runtime()?.block_on(async move {
        let engine = engine(config)?;
        let out = match (image, text) {
            (Some(p), _) => engine.embed_images(vec![read_base64(p)?]).await?,
            (None, Some(t)) => engine.embed_texts(vec![t]).await?,
            (None, None) => unreachable!("clap requires one"),
        };
        println!(
            "{}",
            serde_json::json!({"result": out.value[0], "backend": engine.backend_name(), "inference_time_ms": out.inference_ms})
        );
        anyhow::Ok(())
    })
}
