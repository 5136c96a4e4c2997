//! `POST /v1/embeddings` (OpenAI's shape) and long texts: truncated to the model's context as
//! open_clip does, not refused; only an abuse bound on characters remains.
//! (tests/contract/test_openai.py drives the same route with the official `openai` client.)

mod common;

use base64::Engine as _;
use common::{mock_settings, start};
use serde_json::json;

fn caption(words: usize) -> String {
    "cat ".repeat(words).trim_end().to_string()
}

#[tokio::test]
async fn long_texts_are_truncated_like_open_clip_and_say_so() {
    let srv = start(mock_settings()).await;
    // 420 characters (refused before by the 300-character label bound).
    let long = "a long caption about a cat on a mat, ".repeat(12);
    assert!(long.len() >= 420);
    let (code, r) = srv.post("/v1/embed/text", json!({"text": long})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["truncated"], true);

    // Past 75 text tokens the rest is cut: 76 and 200 words embed like 75 (end-of-text last).
    let (code, r) = srv
        .post(
            "/v1/embed/text",
            json!({"texts": [caption(75), caption(76), caption(200), "a cat"]}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["truncated"], json!([false, true, true, false]));
    let v = r["result"].as_array().unwrap();
    assert_eq!(v[0], v[1]);
    assert_eq!(v[0], v[2]);
    assert_ne!(v[0], v[3]);

    // Images carry no `truncated`.
    let img = common::png_b64(8, 8, 1);
    let (_, r) = srv.post("/v1/embed/image", json!({"image": img})).await;
    assert!(r.get("truncated").is_none());
}

#[tokio::test]
async fn texts_keep_an_abuse_bound_and_refuse_empty() {
    let mut s = mock_settings();
    s.limits.max_text_chars = 1000;
    let srv = start(s).await;
    let (code, r) = srv
        .post("/v1/embed/text", json!({"text": "x".repeat(1001)}))
        .await;
    assert_eq!(code, 422);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_text_chars"),
        "{r}"
    );
    for bad in ["", "  \n\t"] {
        let (code, r) = srv.post("/v1/embed/text", json!({"text": bad})).await;
        assert_eq!(
            (code, r["error_type"].as_str()),
            (422, Some("invalid_request"))
        );
        let (code, r) = srv
            .post(
                "/v1/embeddings",
                json!({"model": "clip-resnet-50x4", "input": bad}),
            )
            .await;
        assert_eq!(
            (code, r["error_type"].as_str()),
            (422, Some("invalid_request"))
        );
    }
    // Labels keep their own, smaller bound.
    let (code, r) = srv
        .post(
            "/v1/classify",
            json!({"image": common::png_b64(8, 8, 1), "labels": ["x".repeat(301)]}),
        )
        .await;
    assert_eq!(code, 422);
    assert!(r["error"]
        .as_str()
        .unwrap()
        .contains("limits.max_label_chars"));
}

#[tokio::test]
async fn embeddings_answer_in_openai_shape() {
    let srv = start(mock_settings()).await;
    let texts = ["a photo of a cat.", "a photo of a dog."];
    let (_, reference) = srv.post("/v1/embed/text", json!({"texts": texts})).await;

    let (code, r) = srv
        .post(
            "/v1/embeddings",
            json!({"model": "clip-resnet-50x4", "input": texts}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["object"], "list");
    assert_eq!(r["model"], "clip-resnet-50x4");
    assert_eq!(r["usage"], json!({"prompt_tokens": 16, "total_tokens": 16}));
    for (i, d) in r["data"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], i);
        assert_eq!(d["embedding"], reference["result"][i]);
    }

    let (code, r) = srv
        .post(
            "/v1/embeddings",
            json!({"model": "clip-resnet-50x4", "input": texts[0], "encoding_format": "base64", "dimensions": 64, "user": "u1"}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let v: Vec<f64> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .collect();
    let want: Vec<f64> = reference["result"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 64);
    for (a, b) in v.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[tokio::test]
async fn embeddings_refuse_what_they_cannot_do() {
    let srv = start(mock_settings()).await;
    let m = "clip-resnet-50x4";
    let cases = [
        (
            json!({"model": m, "input": "cat", "dimensions": 32}),
            422,
            "invalid_request",
        ),
        (
            json!({"model": "text-embedding-3-small", "input": "cat"}),
            404,
            "model_not_found",
        ),
        (
            json!({"model": m, "input": [[320, 1125]]}),
            422,
            "invalid_request",
        ),
        (json!({"model": m, "input": [1, 2]}), 422, "invalid_request"),
        (json!({"model": m, "input": []}), 422, "invalid_request"),
        (
            json!({"model": m, "input": "x", "encoding_format": "int8"}),
            422,
            "invalid_request",
        ),
        (json!({"input": "cat"}), 422, "invalid_request"),
        (
            json!({"model": m, "input": "cat", "extra": 1}),
            422,
            "invalid_request",
        ),
    ];
    for (body, code, kind) in cases {
        let (c, r) = srv.post("/v1/embeddings", body.clone()).await;
        assert_eq!(
            (c, r["error_type"].as_str()),
            (code, Some(kind)),
            "{body}: {r}"
        );
    }
    let bad = [
        ("application/json", "{\"model\":", 400),
        ("application/x-www-form-urlencoded", "input=cat", 415),
    ];
    for (content_type, body, code) in bad {
        let (c, r) = srv.post_bytes("/v1/embeddings", content_type, body).await;
        assert_eq!(c, code, "{content_type} {body}: {r}");
    }

    // The truncation header names the cut inputs.
    let r = srv
        .client
        .post(srv.at("/v1/embeddings"))
        .json(&json!({"model": m, "input": ["cat", caption(100)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-truncated-inputs"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 3 + 77);
}

#[tokio::test]
async fn images_by_infinitys_modality() {
    let srv = start(mock_settings()).await;
    let img = common::png_b64(16, 12, 5);
    let uri = format!("data:image/png;base64,{img}");
    let (_, reference) = srv
        .post(
            "/v1/embed/image",
            json!({"images": [img.clone(), uri.clone()]}),
        )
        .await;
    let (code, r) = srv
        .post(
            "/v1/embeddings",
            json!({"model": "clip-resnet-50x4", "input": [img, uri], "modality": "image"}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["data"][0]["embedding"], reference["result"][0]);
    assert_eq!(r["data"][1]["embedding"], reference["result"][1]);
    assert_eq!(r["usage"]["prompt_tokens"], 0);
    let (code, r) = srv
        .post(
            "/v1/embeddings",
            json!({"model": "clip-resnet-50x4", "input": "https://example.com/cat.jpg", "modality": "image"}),
        )
        .await;
    assert_eq!(
        (code, r["error_type"].as_str()),
        (422, Some("invalid_request"))
    );
    let (code, r) = srv
        .post(
            "/v1/embeddings",
            json!({"model": "clip-resnet-50x4", "input": "not an image", "modality": "image"}),
        )
        .await;
    assert_eq!(
        (code, r["error_type"].as_str()),
        (400, Some("invalid_base64")),
        "{r}"
    );
}
