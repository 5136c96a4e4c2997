//! Several models in one service: per-request selection, the default, unknown names, the model
//! list, lazy load, idle unload and reload, and fairness under a burst to one model.

mod common;

use common::*;
use config::{BackendSettings, ModelSettings, Settings};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn mock_model(name: &str, dim: usize) -> ModelSettings {
    let mut backend = BackendSettings {
        kind: config::BackendKind::Mock,
        ..Default::default()
    };
    backend.mock.embedding_dimension = dim;
    backend.mock.image_size = 16;
    ModelSettings {
        name: name.into(),
        default: false,
        backend: Some(backend),
        resize_mode: None,
        prompt_template: None,
        embedding_dimension: None,
        image_size: None,
    }
}

fn two_models() -> Settings {
    let mut s = mock_settings();
    let mut lazy = mock_model("small", 32);
    lazy.backend.as_mut().unwrap().warmup = false;
    let mut big = mock_model("big", 64);
    big.default = true;
    s.models = vec![lazy, big];
    s.validate().unwrap();
    s
}

async fn start_settings(s: Settings) -> TestServer {
    start_models(engine::Models::start(&s).unwrap()).await
}

fn dim(v: &serde_json::Value) -> u64 {
    v["dimension"].as_u64().unwrap()
}

#[tokio::test]
async fn requests_pick_their_model_and_default_to_the_default() {
    let srv = start_settings(two_models()).await;
    let (c, r) = srv
        .post("/v1/embed/text", json!({"text": "a cat", "model": "small"}))
        .await;
    assert_eq!(
        (c, dim(&r), r["model"].as_str()),
        (200, 32, Some("small")),
        "{r}"
    );
    let (c, r) = srv.post("/v1/embed/text", json!({"text": "a cat"})).await;
    assert_eq!(
        (c, dim(&r), r["model"].as_str()),
        (200, 64, Some("big")),
        "{r}"
    );
    let (c, r) = srv
        .post(
            "/v1/embed/image",
            json!({"image": png_b64(20, 20, 1), "model": "small"}),
        )
        .await;
    assert_eq!((c, dim(&r)), (200, 32), "{r}");
    let (c, r) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(20, 20, 1), "labels": ["cat", "dog"], "model": "small"}),
        )
        .await;
    assert_eq!((c, r["model"].as_str()), (200, Some("small")), "{r}");
    let (c, e) = srv
        .post("/v1/embed/text", json!({"text": "a cat", "model": "nope"}))
        .await;
    assert_eq!(
        (c, e["error_type"].as_str()),
        (404, Some("model_not_found")),
        "{e}"
    );
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("small") && msg.contains("big"), "{msg}");
    // Device and cache metrics are per model.
    let (_, m) = srv.get_text("/metrics").await;
    for model in ["small", "big"] {
        assert!(
            m.contains(&format!(
                "hailo_clip_batch_size_count{{kind=\"text\",model=\"{model}\"}}"
            )),
            "{model}: {m}"
        );
        assert!(
            m.contains(&format!(
                "hailo_clip_text_cache_misses_total{{model=\"{model}\"}}"
            )),
            "{model}"
        );
    }
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn models_list_shows_each_and_lazy_loading() {
    let srv = start_settings(two_models()).await;
    let (_, m) = srv.get("/v1/models").await;
    let d = m["data"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0]["id"].as_str(), d[0]["loaded"].as_bool()),
        (Some("small"), Some(false)),
        "{m}"
    );
    assert_eq!(
        (d[1]["id"].as_str(), d[1]["loaded"].as_bool()),
        (Some("big"), Some(true)),
        "{m}"
    );
    assert_eq!(d[1]["default"], true);
    assert_eq!(d[1]["dimension"], 64);
    // The lazy model loads on its first request.
    let (c, _) = srv
        .post("/v1/embed/text", json!({"text": "x", "model": "small"}))
        .await;
    assert_eq!(c, 200);
    let (_, m) = srv.get("/v1/models").await;
    assert_eq!(m["data"][0]["loaded"], true, "{m}");
    assert_eq!(m["data"][0]["dimension"], 32);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn an_idle_model_unloads_and_loads_again_on_demand() {
    let mut s = two_models();
    s.models[0].backend.as_mut().unwrap().idle_unload_secs = Some(1);
    let srv = start_settings(s).await;
    let loaded = |m: &serde_json::Value| m["data"][0]["loaded"].as_bool().unwrap();
    assert_eq!(
        srv.post("/v1/embed/text", json!({"text": "x", "model": "small"}))
            .await
            .0,
        200
    );
    assert!(loaded(&srv.get("/v1/models").await.1));
    let mut unloaded = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if !loaded(&srv.get("/v1/models").await.1) {
            unloaded = true;
            break;
        }
    }
    assert!(unloaded, "the idle model was never unloaded");
    let (c, r) = srv
        .post("/v1/embed/text", json!({"text": "y", "model": "small"}))
        .await;
    assert_eq!((c, dim(&r)), (200, 32), "{r}");
    assert!(loaded(&srv.get("/v1/models").await.1));
    let (_, metrics) = srv.get_text("/metrics").await;
    assert!(
        metrics.contains("hailo_clip_model_unloads_total"),
        "{metrics}"
    );
    srv.stop().await.unwrap();
}

/// Each model has its own queue and device thread: a burst of slow work for one model does not
/// hold up another's requests.
#[tokio::test]
async fn a_burst_for_one_model_does_not_starve_another() {
    let mut s = two_models();
    // "big" takes 100 ms per image batch; "small" none.
    s.models[1]
        .backend
        .as_mut()
        .unwrap()
        .mock
        .latency
        .image_fixed_ms = 100.0;
    s.models[1].backend.as_mut().unwrap().mock.max_batch_size = 1;
    let srv = Arc::new(start_settings(s).await);
    let burst: Vec<_> = (0..16)
        .map(|i| {
            let srv = srv.clone();
            tokio::spawn(async move {
                srv.post(
                    "/v1/embed/image",
                    json!({"image": png_b64(20, 20, i as u8), "model": "big"}),
                )
                .await
                .0
            })
        })
        .collect();
    // While the burst (16 x 100 ms at batch 1) is being worked off, "small" answers each time.
    tokio::time::sleep(Duration::from_millis(150)).await;
    for i in 0..5 {
        let (c, r) = srv
            .post(
                "/v1/embed/image",
                json!({"image": png_b64(20, 20, i), "model": "small"}),
            )
            .await;
        assert_eq!((c, dim(&r)), (200, 32), "{r}");
    }
    let pending = burst.iter().filter(|t| !t.is_finished()).count();
    assert!(
        pending > 0,
        "the burst was over before the other model was asked: no contention shown"
    );
    for t in burst {
        let code = t.await.unwrap();
        assert!(code == 200 || code == 429, "{code}");
    }
    Arc::try_unwrap(srv).ok().unwrap().stop().await.unwrap();
}

#[test]
fn model_lists_are_checked_by_key() {
    let err = |s: Settings| s.validate().map(|_| ()).unwrap_err().to_string();
    let mut s = two_models();
    s.models[1].name = "small".into();
    assert!(err(s).contains("models[1].name"), "duplicate names");
    let mut s = two_models();
    s.models[0].name = "../x".into();
    assert!(err(s).contains("models[0].name"));
    let mut s = two_models();
    for m in &mut s.models {
        m.backend.as_mut().unwrap().kind = config::BackendKind::Hailo;
    }
    let e = err(s);
    assert!(
        e.contains("models[1].backend") && e.contains("Hailo device"),
        "{e}"
    );
    let mut s = two_models();
    s.models[0].default = true;
    assert!(err(s).contains("default"));
    let mut s = two_models();
    s.models[0].prompt_template = Some("no placeholder".into());
    assert!(err(s).contains("models[0].clip.prompt_template"));
    // A YAML list parses with the inherited sections.
    let y = "backend:\n  type: mock\nmodels:\n  - name: a\n  - name: b\n    default: true\n    resize_mode: center_crop\n";
    let s = Settings::from_str_at(y, std::path::Path::new("m.yaml")).unwrap();
    let per = s.per_model();
    assert_eq!(per.len(), 2);
    assert_eq!(per[1].clip.model, "b");
    assert_eq!(per[1].clip.resize_mode, clip::ResizeMode::CenterCrop);
    assert_eq!(per[0].backend.kind, config::BackendKind::Mock);
    assert_eq!(s.default_model(), 1);
}

/// A mock model and the tiny ONNX model side by side.
#[cfg(feature = "onnx")]
#[tokio::test]
async fn a_mock_and_an_onnx_model_side_by_side() {
    use common::onnx::{library, tiny};
    let mut s = two_models();
    let mut onnx = BackendSettings {
        kind: config::BackendKind::Onnx,
        ..Default::default()
    };
    onnx.onnx.image_model = Some(tiny("image.onnx"));
    onnx.onnx.text_model = Some(tiny("text.onnx"));
    onnx.onnx.library_path = Some(library());
    onnx.onnx.threads = Some(1);
    s.models.push(ModelSettings {
        name: "tiny-rn".into(),
        backend: Some(onnx),
        ..mock_model("tiny-rn", 1)
    });
    s.validate().unwrap();
    let srv = start_settings(s).await;
    wait_while_loading(&srv.client, &srv.url, 600, Duration::from_millis(100)).await;
    let (c, r) = srv
        .post(
            "/v1/embed/text",
            json!({"texts": ["a cat", "a dog"], "model": "tiny-rn"}),
        )
        .await;
    assert_eq!(
        (c, dim(&r), r["backend"].as_str()),
        (200, 64, Some("onnx")),
        "{r}"
    );
    let (c, r) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(64, 64, 3), "labels": ["cat", "dog"], "model": "tiny-rn"}),
        )
        .await;
    assert_eq!((c, r["model"].as_str()), (200, Some("tiny-rn")), "{r}");
    let (c, r) = srv
        .post("/v1/embed/text", json!({"text": "a cat", "model": "small"}))
        .await;
    assert_eq!(
        (c, dim(&r), r["backend"].as_str()),
        (200, 32, Some("mock")),
        "{r}"
    );
    let (_, m) = srv.get("/v1/models").await;
    assert_eq!(m["data"].as_array().unwrap().len(), 3, "{m}");
    srv.stop().await.unwrap();
}

/// `limits.models_memory_mb`: loading a model that does not fit beside the loaded ones unloads
/// the least recently used of them first; interleaved requests for two models that cannot both
/// be loaded are all answered; a model larger than the whole budget is refused by name.
#[tokio::test]
async fn the_memory_budget_swaps_models_and_refuses_one_too_big() {
    let mut s = mock_settings();
    s.limits.models_memory_mb = 40;
    let lazy = |name: &str, mb: u64| {
        let mut m = mock_model(name, 32);
        let b = m.backend.as_mut().unwrap();
        b.warmup = false;
        b.mock.resident_mb = mb;
        m
    };
    s.models = vec![
        lazy("swap-a", 24),
        lazy("swap-b", 24),
        lazy("swap-huge", 48),
    ];
    s.validate().unwrap();
    let srv = Arc::new(start_settings(s).await);
    let state = |list: &serde_json::Value, id: &str| {
        let m = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone();
        (m["loaded"].as_bool().unwrap(), m["memory_mb"].as_u64())
    };
    let embed = |model: &'static str| {
        let srv = srv.clone();
        async move {
            srv.post("/v1/embed/text", json!({"text": "a cat", "model": model}))
                .await
        }
    };
    assert_eq!(embed("swap-a").await.0, 200);
    let list = srv.get("/v1/models").await.1;
    assert_eq!(state(&list, "swap-a"), (true, Some(24)), "{list}");
    assert_eq!(embed("swap-b").await.0, 200);
    let list = srv.get("/v1/models").await.1;
    assert_eq!(state(&list, "swap-a"), (false, None), "{list}");
    assert_eq!(state(&list, "swap-b"), (true, Some(24)), "{list}");

    let all: Vec<_> = (0..12)
        .map(|i| tokio::spawn(embed(if i % 2 == 0 { "swap-a" } else { "swap-b" })))
        .collect();
    for t in all {
        let (c, r) = t.await.unwrap();
        assert_eq!(c, 200, "{r}");
    }

    let (c, e) = embed("swap-huge").await;
    assert_eq!(
        (c, e["error_type"].as_str()),
        (503, Some("insufficient_memory")),
        "{e}"
    );
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("limits.models_memory_mb") && msg.contains("48 MiB"),
        "{msg}"
    );
    let (_, metrics) = srv.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hailo_clip_model_unloads_total") && l.contains("swap-a")),
        "{metrics}"
    );
    Arc::try_unwrap(srv).ok().unwrap().stop().await.unwrap();
}
