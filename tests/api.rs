//! The HTTP API against the real server with the mock backend.

mod common;

use common::*;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[tokio::test]
async fn health_and_info_name_the_backend() {
    let srv = start(mock_settings()).await;
    let (code, h) = srv.get("/health").await;
    assert_eq!(code, 200, "{h}");
    assert_eq!(h["backend"], "mock");
    assert_eq!(h["model"], "clip-resnet-50x4");
    assert_eq!(h["ready"], true);
    let (code, i) = srv.get("/info").await;
    assert_eq!(code, 200);
    assert_eq!(i["backend"], "mock");
    assert_eq!(i["embedding_dimension"], 64);
    assert_eq!(i["input_size"], json!([32, 32]));
    assert!(i["versions"]["hailo-clip"].is_string());
    assert!(i["limits"]["max_labels"].is_number());
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn classify_ranks_labels_with_softmax_scores() {
    let srv = start(mock_settings()).await;
    let labels = ["cat", "dog", "car", "tree"];
    let (code, r) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(50, 40, 3), "labels": labels}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["backend"], "mock");
    assert_eq!(r["model"], "clip-resnet-50x4");
    assert!(r["inference_time_ms"].as_f64().unwrap() >= 0.0);
    let res = r["result"].as_array().unwrap();
    assert_eq!(res.len(), 4);
    let scores: Vec<f64> = res.iter().map(|x| x["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted: {scores:?}"
    );
    assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-4);
    // score is softmax(100 * similarity) over the labels.
    let sims: Vec<f64> = res
        .iter()
        .map(|x| x["similarity"].as_f64().unwrap())
        .collect();
    let z: f64 = sims.iter().map(|s| (100.0 * (s - sims[0])).exp()).sum();
    assert!((scores[0] - 1.0 / z).abs() < 1e-4);
    // Deterministic: same request, same answer.
    let (_, again) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(50, 40, 3), "labels": labels}),
        )
        .await;
    assert_eq!(again["result"], r["result"]);
    // top_k and threshold
    let (_, k) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(50, 40, 3), "labels": labels, "top_k": 2}),
        )
        .await;
    assert_eq!(k["result"].as_array().unwrap().len(), 2);
    let (_, t) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(50, 40, 3), "labels": labels, "threshold": 1.0}),
        )
        .await;
    assert!(t["result"].as_array().unwrap().len() <= 1);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn negatives_take_part_but_are_not_reported() {
    let srv = start(mock_settings()).await;
    let img = png_b64(30, 30, 9);
    let (code, r) = srv
        .post(
            "/v1/classify",
            json!({"image": img, "labels": ["cat", "dog"], "negative_labels": ["background", "nothing", "blur"]}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let res = r["result"].as_array().unwrap();
    assert_eq!(res.len(), 2);
    assert!(res
        .iter()
        .all(|x| x["label"] == "cat" || x["label"] == "dog"));
    let sum: f64 = res.iter().map(|x| x["score"].as_f64().unwrap()).sum();
    assert!(
        sum < 1.0 - 1e-6,
        "negatives must take some probability mass: {sum}"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn templates_and_ensembles() {
    let srv = start(mock_settings()).await;
    let img = png_b64(30, 30, 1);
    let (c1, a) = srv
        .post("/v1/classify", json!({"image": img, "labels": ["cat", "dog"], "prompt_template": "a drawing of a {}."}))
        .await;
    let (c2, b) = srv
        .post(
            "/v1/classify",
            json!({"image": img, "labels": ["cat", "dog"]}),
        )
        .await;
    assert_eq!((c1, c2), (200, 200));
    assert_ne!(
        a["result"], b["result"],
        "the template changes the text embedding"
    );
    let (c3, e) = srv
        .post(
            "/v1/classify",
            json!({"image": img, "labels": ["cat", "dog"], "templates": ["a photo of a {}.", "a photo of the {}.", "a photo of my {}."]}),
        )
        .await;
    assert_eq!(c3, 200, "{e}");
    assert_eq!(e["result"].as_array().unwrap().len(), 2);
    let (c4, err) = srv
        .post(
            "/v1/classify",
            json!({"image": img, "labels": ["cat"], "prompt_template": "no placeholder"}),
        )
        .await;
    assert_eq!(c4, 422);
    assert_eq!(err["error_type"], "invalid_request");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn embed_image_one_and_many() {
    let srv = start(mock_settings()).await;
    let a = png_b64(40, 20, 1);
    let (code, r) = srv.post("/v1/embed/image", json!({"image": a})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["dimension"], 64);
    assert_eq!(r["backend"], "mock");
    assert!((norm(&r["result"]) - 1.0).abs() < 1e-5);
    assert!(r["inference_time_ms"].is_number());
    // data URI with line breaks gives the same vector
    let wrapped: String = a
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let (code, r2) = srv
        .post(
            "/v1/embed/image",
            json!({"image": format!("data:image/png;base64,{wrapped}")}),
        )
        .await;
    assert_eq!(code, 200, "{r2}");
    assert_eq!(r2["result"], r["result"]);
    // lists: more images than the device batch, split and reassembled in order
    let imgs: Vec<String> = (0..11).map(|i| png_b64(20, 20, i + 1)).collect();
    let (code, many) = srv.post("/v1/embed/image", json!({"images": imgs})).await;
    assert_eq!(code, 200, "{many}");
    let v = many["result"].as_array().unwrap();
    assert_eq!(v.len(), 11);
    let (_, first) = srv.post("/v1/embed/image", json!({"image": imgs[0]})).await;
    let (_, last) = srv
        .post("/v1/embed/image", json!({"image": imgs[10]}))
        .await;
    assert_eq!(v[0], first["result"]);
    assert_eq!(v[10], last["result"]);
    assert_ne!(v[0], v[10]);
    let (code, _) = srv
        .post("/v1/embed/image", json!({"image": [imgs[0], imgs[1]]}))
        .await;
    assert_eq!(code, 200);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn embed_text_one_and_many() {
    let srv = start(mock_settings()).await;
    let (code, r) = srv
        .post("/v1/embed/text", json!({"text": "a photo of a cat."}))
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["result"].as_array().unwrap().len(), 64);
    assert!((norm(&r["result"]) - 1.0).abs() < 1e-5);
    let (code, m) = srv
        .post(
            "/v1/embed/text",
            json!({"texts": ["a photo of a cat.", "a photo of a dog.", "a photo of a cat."]}),
        )
        .await;
    assert_eq!(code, 200, "{m}");
    let v = m["result"].as_array().unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0], r["result"]);
    assert_eq!(v[0], v[2]);
    assert_ne!(v[0], v[1]);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_label_sets_do_not_reach_the_text_encoder() {
    let (srv, calls, texts) = counting_server(mock_settings()).await;
    let body = json!({"image": png_b64(20, 20, 5), "labels": ["cat", "dog", "bird"]});
    assert_eq!(srv.post("/v1/classify", body.clone()).await.0, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(texts.load(Ordering::SeqCst), 3);
    for _ in 0..3 {
        assert_eq!(srv.post("/v1/classify", body.clone()).await.0, 200);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "cached labels must not be re-encoded"
    );
    // One new label: only it is encoded.
    let body2 = json!({"image": png_b64(20, 20, 5), "labels": ["cat", "dog", "fish"]});
    assert_eq!(srv.post("/v1/classify", body2).await.0, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(texts.load(Ordering::SeqCst), 4);
    let (_, metrics) = srv.get_text("/metrics").await;
    assert!(
        metrics.contains("hailo_clip_text_cache_hits_total"),
        "{metrics}"
    );
    assert!(metrics.contains("hailo_clip_text_cache_misses_total"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn disabled_cache_encodes_every_time() {
    let mut s = mock_settings();
    s.cache.text_entries = 0;
    let (srv, calls, _) = counting_server(s).await;
    let body = json!({"image": png_b64(20, 20, 5), "labels": ["cat", "dog"]});
    srv.post("/v1/classify", body.clone()).await;
    srv.post("/v1/classify", body).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let srv = start(mock_settings()).await;
    srv.post(
        "/v1/classify",
        json!({"image": png_b64(20, 20, 5), "labels": ["a", "b"]}),
    )
    .await;
    let (code, m) = srv.get_text("/metrics").await;
    assert_eq!(code, 200);
    for name in [
        "hailo_clip_requests_total",
        "hailo_clip_request_duration_seconds",
        "hailo_clip_queue_seconds",
        "hailo_clip_inference_seconds",
        "hailo_clip_batch_size",
    ] {
        assert!(m.contains(name), "missing {name} in\n{m}");
    }
    assert!(m.contains("route=\"/v1/classify\""));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn client_errors_get_the_right_status() {
    let mut s = mock_settings();
    s.limits.max_body_bytes = 200_000;
    s.limits.max_image_pixels = 100 * 100;
    s.limits.max_labels = 5;
    s.limits.max_label_chars = 20;
    let srv = start(s).await;
    let img = png_b64(20, 20, 1);
    let cases: Vec<(serde_json::Value, u16, &str)> = vec![
        (
            json!({"image": "!!!notbase64", "labels": ["a"]}),
            400,
            "invalid_base64",
        ),
        (
            json!({"image": "aGVsbG8gd29ybGQ=", "labels": ["a"]}),
            415,
            "unsupported_image",
        ),
        (
            json!({"image": png_b64(101, 100, 1), "labels": ["a"]}),
            413,
            "image_too_large",
        ),
        (json!({"image": img, "labels": []}), 422, "invalid_request"),
        (
            json!({"image": img, "labels": ["a", "b", "c", "d", "e", "f"]}),
            422,
            "invalid_request",
        ),
        (
            json!({"image": img, "labels": ["x".repeat(21)]}),
            422,
            "invalid_request",
        ),
        (
            json!({"image": img, "labels": ["a", "a"]}),
            422,
            "invalid_request",
        ),
        (
            json!({"image": img, "labels": ["a"], "top_k": 0}),
            422,
            "invalid_request",
        ),
        (
            json!({"image": img, "labels": ["a"], "threshold": 2.0}),
            422,
            "invalid_request",
        ),
        (json!({"image": img}), 422, "invalid_request"),
        (
            json!({"image": img, "labels": ["a"], "bogus": 1}),
            422,
            "invalid_request",
        ),
        (json!({"image": img, "labels": "a"}), 422, "invalid_request"),
    ];
    for (body, status, kind) in cases {
        let (code, r) = srv.post("/v1/classify", body.clone()).await;
        assert_eq!(code, status, "body {body} -> {r}");
        assert_eq!(r["error_type"], kind, "{r}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // A corrupt image of a known format
    let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &img).unwrap();
    let cut = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png[..60]);
    let (code, r) = srv
        .post("/v1/classify", json!({"image": cut, "labels": ["a"]}))
        .await;
    assert_eq!(code, 400, "{r}");
    assert_eq!(r["error_type"], "invalid_image");
    // A JPEG cut in half: refused, not decoded with the missing half grey
    let photo = image::RgbImage::from_fn(96, 96, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 2) as u8, ((x * y) % 251) as u8])
    });
    let mut jpeg = std::io::Cursor::new(Vec::new());
    photo.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let jpeg = jpeg.into_inner();
    let half = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        &jpeg[..jpeg.len() / 2],
    );
    let (code, r) = srv
        .post("/v1/classify", json!({"image": half, "labels": ["a"]}))
        .await;
    assert_eq!(code, 400, "{r}");
    assert_eq!(r["error_type"], "invalid_image", "{r}");
    // Malformed JSON
    let (code, b) = srv
        .post_bytes("/v1/classify", "application/json", "{not json")
        .await;
    assert_eq!(code, 400);
    assert_eq!(b["error_type"], "malformed_json");
    // No JSON content type
    let r = srv
        .client
        .post(srv.at("/v1/classify"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    // Body over the limit
    let big = "A".repeat(300_000);
    let (code, r) = srv.post("/v1/embed/image", json!({"image": big})).await;
    assert_eq!(code, 413, "{r}");
    assert_eq!(r["error_type"], "body_too_large");
    // embed forms
    let (code, _) = srv.post("/v1/embed/image", json!({})).await;
    assert_eq!(code, 422);
    let (code, _) = srv
        .post("/v1/embed/image", json!({"image": img, "images": [img]}))
        .await;
    assert_eq!(code, 422);
    let (code, _) = srv.post("/v1/embed/text", json!({"text": ""})).await;
    assert_eq!(code, 422);
    // Unknown route
    let (code, r) = srv.get("/v2/nothing").await;
    assert_eq!(code, 404);
    assert_eq!(r["error_type"], "not_found");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn other_image_formats_and_exif_orientation() {
    let srv = start(mock_settings()).await;
    for name in ["cat.jpg", "astronaut.png", "coffee.jpg"] {
        let (code, r) = srv
            .post(
                "/v1/embed/image",
                json!({"image": file_b64(&fixture(&format!("images/{name}")))}),
            )
            .await;
        assert_eq!(code, 200, "{name}: {r}");
    }
    let img = image::RgbImage::from_fn(24, 16, |x, y| image::Rgb([x as u8 * 10, y as u8 * 10, 50]));
    for fmt in [
        image::ImageFormat::Bmp,
        image::ImageFormat::Gif,
        image::ImageFormat::Tiff,
        image::ImageFormat::WebP,
    ] {
        let mut out = std::io::Cursor::new(Vec::new());
        if fmt == image::ImageFormat::Gif || fmt == image::ImageFormat::WebP {
            image::DynamicImage::ImageRgb8(img.clone())
                .to_rgba8()
                .write_to(&mut out, fmt)
                .unwrap();
        } else {
            img.write_to(&mut out, fmt).unwrap();
        }
        let b64 =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, out.into_inner());
        let (code, r) = srv.post("/v1/embed/image", json!({"image": b64})).await;
        assert_eq!(code, 200, "{fmt:?}: {r}");
    }
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn full_queue_answers_429_at_once() {
    let mut s = mock_settings();
    s.batching.queue_capacity = 1;
    s.batching.max_batch_size = 1;
    s.backend.mock.latency.image_fixed_ms = 300.0;
    let srv = Arc::new(start(s).await);
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let srv = srv.clone();
        tasks.push(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (code, body) = srv
                .post("/v1/embed/image", json!({"image": png_b64(20, 20, i + 1)}))
                .await;
            (code, body, started.elapsed())
        }));
    }
    let mut ok = 0;
    let mut rejected = 0;
    for t in tasks {
        let (code, body, took) = t.await.unwrap();
        match code {
            200 => ok += 1,
            429 => {
                rejected += 1;
                assert_eq!(body["error_type"], "overloaded");
                assert!(
                    took.as_millis() < 250,
                    "429 must not wait for the device: {took:?}"
                );
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(ok >= 1, "some requests are served");
    assert!(rejected >= 1, "a full queue rejects");
    assert_eq!(ok + rejected, 8);
}

#[tokio::test]
async fn device_fault_turns_unhealthy_then_recovers() {
    let mut s = mock_settings();
    s.backend.warmup = false;
    // Calls: 1 fails, then the rebuild probe (image + text = calls 2, 3) succeeds, 4 fails...
    s.backend.mock.fail_every = 4;
    let srv = start(s).await;
    let mut seen_503 = false;
    for i in 0..6u8 {
        let (code, r) = srv
            .post("/v1/embed/image", json!({"image": png_b64(20, 20, i + 1)}))
            .await;
        match code {
            200 => {}
            503 => {
                seen_503 = true;
                assert_eq!(r["error_type"], "backend_unavailable", "{r}");
                assert!(r["error"].as_str().unwrap().contains("fault"), "{r}");
            }
            other => panic!("{other}: {r}"),
        }
    }
    assert!(seen_503, "an injected fault must surface as 503");
    // After the rebuild and probe, health is back.
    let mut healthy = false;
    for _ in 0..200 {
        if srv.get("/health").await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(healthy);
    let (_, m) = srv.get_text("/metrics").await;
    assert!(m.contains("hailo_clip_device_faults_total"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn model_mismatch_is_a_clear_503() {
    let mut s = mock_settings();
    s.backend.warmup = false;
    s.clip.image_size = Some(224);
    let srv = start(s).await;
    let (code, r) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(20, 20, 1), "labels": ["a"]}),
        )
        .await;
    assert_eq!(code, 503, "{r}");
    assert_eq!(r["error_type"], "not_ready");
    let msg = r["error"].as_str().unwrap();
    assert!(
        msg.contains("clip.image_size is 224") && msg.contains("32x32"),
        "{msg}"
    );
    let (code, h) = srv.get("/health").await;
    assert_eq!(code, 503);
    assert_eq!(h["status"], "failed");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn abandoned_requests_are_skipped_by_the_device() {
    let mut s = mock_settings();
    s.batching.max_batch_size = 1;
    s.backend.mock.latency.image_fixed_ms = 500.0;
    let (srv, _, _) = counting_server(s.clone()).await;
    let srv = Arc::new(srv);
    // One slow job occupies the device; the second client gives up while queued.
    let busy = {
        let srv = srv.clone();
        tokio::spawn(async move {
            srv.post("/v1/embed/image", json!({"image": png_b64(20, 20, 1)}))
                .await
        })
    };
    // Generous margins: under a loaded CI machine the first job must be on the device first.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = srv
        .post_giving_up(
            "/v1/embed/image",
            json!({"image": png_b64(20, 20, 2)}),
            std::time::Duration::from_millis(80),
        )
        .await;
    assert!(r.is_err(), "the client timed out");
    assert_eq!(busy.await.unwrap().0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, m) = srv.get_text("/metrics").await;
    let skipped = m
        .lines()
        .find(|l| l.starts_with("hailo_clip_jobs_abandoned_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(skipped >= 1.0, "abandoned job must be skipped:\n{m}");
}

#[tokio::test]
async fn api_key_guards_everything_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "s3cret\n").unwrap();
    let mut s = mock_settings();
    s.server.api_key_file = Some(key);
    let srv = start(s).await;
    assert_eq!(srv.get("/health").await.0, 200);
    let (code, r) = srv.post("/v1/embed/text", json!({"text": "a"})).await;
    assert_eq!(code, 401);
    assert_eq!(r["error_type"], "unauthorized");
    let r = srv
        .client
        .post(srv.at("/v1/embed/text"))
        .bearer_auth("s3cret")
        .json(&json!({"text": "a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn lazy_start_loads_on_first_request() {
    let mut s = mock_settings();
    s.backend.warmup = false;
    let srv = start(s).await;
    let (code, h) = srv.get("/health").await;
    assert_eq!(code, 200);
    assert_eq!(h["model_loaded"], false);
    assert_eq!(
        srv.post("/v1/embed/text", json!({"text": "a"})).await.0,
        200
    );
    let (_, h) = srv.get("/health").await;
    assert_eq!(h["model_loaded"], true);
    srv.stop().await.unwrap();
}
