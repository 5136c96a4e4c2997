//! Immich's remote machine-learning API (`GET /ping`, `POST /predict`) with request bodies
//! built byte for byte as Immich's server builds them: Node's `FormData` (undici) with an
//! `entries` JSON part, then an `image` Blob (filename "blob", application/octet-stream) or a
//! `text` field, under undici's boundary. (tests/contract/immich.mjs sends the same requests
//! through Node's own FormData and fetch.)

mod common;

use base64::Engine as _;
use common::{mock_settings, png_b64, start, TestServer};
use serde_json::{json, Value};

const BOUNDARY: &str = "----formdata-undici-020850490598";

enum Part<'a> {
    Field(&'a str, &'a str),
    Blob(&'a str, &'a [u8]),
}

/// undici's multipart encoding (lib/web/fetch/body.js), as Immich's `getFormData` produces it.
fn undici_form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p {
            Part::Field(name, value) => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::Blob(name, bytes) => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"blob\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                        .as_bytes(),
                );
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

async fn predict(srv: &TestServer, body: Vec<u8>, content_type: &str) -> (u16, Value) {
    srv.post_bytes("/predict", content_type, body).await
}

async fn immich(srv: &TestServer, parts: &[Part<'_>]) -> (u16, Value) {
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    predict(srv, undici_form(parts), &ct).await
}

/// encodeImage's entries: `{ [ModelTask.SEARCH]: { [ModelType.VISUAL]: { modelName } } }`.
fn visual(model: &str) -> String {
    json!({"clip": {"visual": {"modelName": model}}}).to_string()
}

/// encodeText's entries, whose `options: { language }` serialises to `{}` when unset.
fn textual(model: &str, language: Option<&str>) -> String {
    let options = language.map_or(json!({}), |l| json!({"language": l}));
    json!({"clip": {"textual": {"modelName": model, "options": options}}}).to_string()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(png_b64(w, h, 3))
        .unwrap()
}

/// Immich stores the embedding string as a pgvector literal: a JSON array of numbers.
fn parse_embedding(v: &Value) -> Vec<Value> {
    let s = v["clip"].as_str().expect("clip is a string");
    serde_json::from_str::<Vec<Value>>(s).unwrap()
}

#[tokio::test]
async fn ping_answers_pong() {
    let srv = start(mock_settings()).await;
    let r = srv.client.get(srv.at("/ping")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "pong");
}

#[tokio::test]
async fn clip_visual_and_textual_answer_as_immich_parses() {
    let srv = start(mock_settings()).await;
    let img = png(40, 30);
    let (code, r) = immich(
        &srv,
        &[
            Part::Field("entries", &visual("RN50x4__openai")),
            Part::Blob("image", &img),
        ],
    )
    .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["imageHeight"], 30);
    assert_eq!(r["imageWidth"], 40);
    let (_, reference) = srv
        .post(
            "/v1/embed/image",
            json!({"image": base64::engine::general_purpose::STANDARD.encode(&img)}),
        )
        .await;
    assert_eq!(
        Value::Array(parse_embedding(&r)),
        reference["result"],
        "same vector as /v1/embed/image"
    );

    for language in [None, Some("de")] {
        let (code, r) = immich(
            &srv,
            &[
                Part::Field("entries", &textual("RN50x4__openai", language)),
                Part::Field("text", "a dog on a beach"),
            ],
        )
        .await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(r.as_object().unwrap().len(), 1, "textual answers only clip");
        let (_, reference) = srv
            .post("/v1/embed/text", json!({"text": "a dog on a beach"}))
            .await;
        assert_eq!(Value::Array(parse_embedding(&r)), reference["result"]);
    }

    // A configured model's own name is accepted too.
    let (code, _) = immich(
        &srv,
        &[
            Part::Field("entries", &textual("clip-resnet-50x4", None)),
            Part::Field("text", "cat"),
        ],
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn other_tasks_and_models_get_the_errors_immich_falls_back_on() {
    let srv = start(mock_settings()).await;
    let img = png(8, 8);
    let faces = json!({"facial-recognition": {
        "detection": {"modelName": "buffalo_l", "options": {"minScore": 0.7}},
        "recognition": {"modelName": "buffalo_l"}}})
    .to_string();
    let ocr = json!({"ocr": {
        "detection": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5, "maxResolution": 736}},
        "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.8}}}})
    .to_string();
    for entries in [faces, ocr] {
        let (code, r) = immich(
            &srv,
            &[Part::Field("entries", &entries), Part::Blob("image", &img)],
        )
        .await;
        assert_eq!(
            (code, r["error_type"].as_str()),
            (422, Some("unsupported_task")),
            "{r}"
        );
    }
    // Mapped by default, but no such model configured here.
    let (code, r) = immich(
        &srv,
        &[
            Part::Field("entries", &visual("ViT-B-32__openai")),
            Part::Blob("image", &img),
        ],
    )
    .await;
    assert_eq!(
        (code, r["error_type"].as_str()),
        (404, Some("model_not_found"))
    );
    assert!(
        r["error"].as_str().unwrap().contains("clip-vit-b-32"),
        "{r}"
    );
    let (code, r) = immich(
        &srv,
        &[
            Part::Field("entries", &visual("ViT-SO400M-16-SigLIP2-384__webli")),
            Part::Blob("image", &img),
        ],
    )
    .await;
    assert_eq!(
        (code, r["error_type"].as_str()),
        (404, Some("model_not_found"))
    );
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("immich.models.ViT-SO400M-16-SigLIP2-384__webli"),
        "{r}"
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let mut s = mock_settings();
    s.limits.max_body_bytes = 64 * 1024;
    let srv = start(s).await;
    let img = png(8, 8);
    let v = visual("RN50x4__openai");
    let t = textual("RN50x4__openai", None);
    let big = vec![0u8; 100 * 1024];
    let cases: Vec<(Vec<Part>, u16, &str)> = vec![
        (vec![Part::Blob("image", &img)], 422, "invalid_request"),
        (
            vec![
                Part::Field("entries", "{\"clip\": "),
                Part::Blob("image", &img),
            ],
            422,
            "invalid_request",
        ),
        (
            vec![Part::Field("entries", "[1, 2]"), Part::Blob("image", &img)],
            422,
            "invalid_request",
        ),
        (
            vec![
                Part::Field("entries", "{\"clip\": {\"visual\": {}}}"),
                Part::Blob("image", &img),
            ],
            422,
            "invalid_request",
        ),
        (vec![Part::Field("entries", &v)], 422, "invalid_request"),
        (
            vec![Part::Field("entries", &v), Part::Field("assetId", "abc")],
            422,
            "invalid_request",
        ),
        (vec![Part::Field("entries", &t)], 422, "invalid_request"),
        (
            vec![Part::Field("entries", &t), Part::Field("text", "  ")],
            422,
            "invalid_request",
        ),
        (
            vec![
                Part::Field("entries", &v),
                Part::Blob("image", b"%PDF-1.4 not an image"),
            ],
            415,
            "unsupported_image",
        ),
        (
            vec![
                Part::Field("entries", &v),
                Part::Blob("image", b"\x89PNG\r\n\x1a\nbroken"),
            ],
            400,
            "invalid_image",
        ),
        (
            vec![Part::Field("entries", &v), Part::Blob("image", &big)],
            413,
            "body_too_large",
        ),
        (
            vec![
                Part::Field("entries", &v),
                Part::Field("entries", &v),
                Part::Blob("image", &img),
            ],
            422,
            "invalid_request",
        ),
    ];
    for (parts, code, kind) in cases {
        let (c, r) = immich(&srv, &parts).await;
        assert_eq!((c, r["error_type"].as_str()), (code, Some(kind)), "{r}");
        assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    // Not multipart at all.
    let (c, r) = predict(&srv, b"{}".to_vec(), "application/json").await;
    assert_eq!(
        (c, r["error_type"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (c, r) = predict(&srv, Vec::new(), "text/plain").await;
    assert_eq!(
        (c, r["error_type"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    // Multipart without a boundary, and a body cut short.
    let (c, r) = predict(&srv, b"x".to_vec(), "multipart/form-data").await;
    assert_eq!(
        (c, r["error_type"].as_str()),
        (400, Some("invalid_multipart"))
    );
    let mut cut = undici_form(&[Part::Field("entries", &v), Part::Blob("image", &img)]);
    cut.truncate(cut.len() - 30);
    let (c, r) = predict(
        &srv,
        cut,
        &format!("multipart/form-data; boundary={BOUNDARY}"),
    )
    .await;
    assert_eq!(
        (c, r["error_type"].as_str()),
        (400, Some("invalid_multipart")),
        "{r}"
    );
}

#[tokio::test]
async fn api_key_applies_unless_immich_is_let_in_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "s3cret\n").unwrap();
    let mut s = mock_settings();
    s.server.api_key_file = Some(key);
    let parts = [
        Part::Field("entries", &textual("RN50x4__openai", None)),
        Part::Field("text", "cat"),
    ];
    let srv = start(s.clone()).await;
    assert_eq!(immich(&srv, &parts).await.0, 401);
    assert_eq!(srv.get_text("/ping").await.0, 401);
    srv.stop().await.unwrap();

    s.immich.require_key = false;
    let srv = start(s.clone()).await;
    assert_eq!(immich(&srv, &parts).await.0, 200);
    assert_eq!(srv.get_text("/ping").await, (200, "pong".to_string()));
    // Everything else still needs the key, unknown paths included.
    assert_eq!(
        srv.post("/v1/embed/text", json!({"text": "a"})).await.0,
        401
    );
    assert_eq!(srv.get("/nope").await.0, 401);
    srv.stop().await.unwrap();

    s.immich.enabled = false;
    let srv = start(s).await;
    assert_eq!(immich(&srv, &parts).await.0, 401);
}
