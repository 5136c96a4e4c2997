//! What survives a restart: the text cache on disk (`cache.persist`) and named label sets; and
//! what the service does when those files are damaged, foreign or cannot be written.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::Ordering;

fn persisted(dir: &Path) -> config::Settings {
    let mut s = mock_settings();
    s.cache.persist = true;
    s.cache.dir = Some(dir.to_path_buf());
    s.cache.flush_secs = 1;
    s
}

fn labels(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class number {i}")).collect()
}

/// Waits until the background load of the text cache has finished; returns /info's status.
async fn loaded(srv: &TestServer) -> Value {
    for _ in 0..400 {
        let (_, info) = srv.get("/info").await;
        if !info["text_cache"]["persist"]["loaded"].is_null() {
            return info["text_cache"]["persist"].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("text cache never loaded");
}

#[tokio::test]
async fn a_restart_keeps_1000_label_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let body = json!({"image": png_b64(20, 20, 3), "labels": labels(1000), "top_k": 3});

    let (srv, calls, texts) = counting_server(persisted(dir.path())).await;
    loaded(&srv).await;
    let (code, first) = srv.post("/v1/classify", body.clone()).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(texts.load(Ordering::SeqCst), 1000);
    assert!(calls.load(Ordering::SeqCst) >= 1);
    srv.stop().await.unwrap();
    assert!(dir.path().join("text-clip-resnet-50x4.bin").exists());

    let (srv, calls, texts) = counting_server(persisted(dir.path())).await;
    let status = loaded(&srv).await;
    assert_eq!(status["loaded"], 1000, "{status}");
    assert!(status["error"].is_null(), "{status}");
    let (code, again) = srv.post("/v1/classify", body).await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "no label reached the text encoder"
    );
    assert_eq!(texts.load(Ordering::SeqCst), 0);
    assert_eq!(again["result"], first["result"]);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn damaged_or_foreign_cache_files_are_discarded_and_serving_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("text-clip-resnet-50x4.bin");
    // A good file of another model (other mock dimension = other identity).
    let mut other = persisted(dir.path());
    other.backend.mock.embedding_dimension = 32;
    let (srv, _, _) = counting_server(other).await;
    loaded(&srv).await;
    let (code, _) = srv
        .post("/v1/embed/text", json!({"texts": ["a cat", "a dog"]}))
        .await;
    assert_eq!(code, 200);
    srv.stop().await.unwrap();
    let good = std::fs::read(&file).unwrap();

    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("another model's", good.clone(), "another model"),
        ("truncated", good[..good.len() / 2].to_vec(), "damaged"),
        (
            "wrong magic",
            b"PK\x03\x04 not a cache at all".to_vec(),
            "wrong magic",
        ),
    ];
    for (what, bytes, says) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let (srv, _, texts) = counting_server(persisted(dir.path())).await;
        let status = loaded(&srv).await;
        assert_eq!(status["loaded"], 0, "{what}: {status}");
        let err = status["error"].as_str().unwrap_or_default();
        assert!(
            err.contains(says) && err.contains("discarded"),
            "{what}: {err}"
        );
        let (code, r) = srv
            .post("/v1/embed/text", json!({"texts": ["a cat", "a dog"]}))
            .await;
        assert_eq!(code, 200, "{what}: {r}");
        assert_eq!(texts.load(Ordering::SeqCst), 2, "{what}: encoded afresh");
        srv.stop().await.unwrap();
        // The stop wrote a good file for this model over the bad one.
        let (srv, _, _) = counting_server(persisted(dir.path())).await;
        assert_eq!(loaded(&srv).await["loaded"], 2, "{what}");
        srv.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_cache_that_cannot_be_written_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // The cache directory's parent is a regular file: every write fails, as on a full disk.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let (srv, _, _) = counting_server(persisted(&blocker.join("cache"))).await;
    loaded(&srv).await;
    let (code, _) = srv
        .post("/v1/embed/text", json!({"text": "a photo of a cat."}))
        .await;
    assert_eq!(code, 200);
    // The flusher runs every second.
    let mut err = String::new();
    for _ in 0..300 {
        let (_, info) = srv.get("/info").await;
        if let Some(e) = info["text_cache"]["persist"]["error"].as_str() {
            err = e.to_string();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(err.starts_with("write"), "{err:?}");
    let (code, _) = srv
        .post("/v1/embed/text", json!({"text": "a photo of a dog."}))
        .await;
    assert_eq!(code, 200, "still serving");
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn label_sets_create_classify_survive_a_restart_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, _, texts) = counting_server(persisted(dir.path())).await;
    let (code, put) = srv
        .put(
            "/v1/label-sets/pets",
            json!({"labels": ["cat", "dog", "bird"], "negative_labels": ["background"],
                   "templates": ["a photo of a {}.", "a picture of a {}."]}),
        )
        .await;
    assert_eq!(code, 200, "{put}");
    assert_eq!(put["result"]["labels"], 3);
    assert_eq!(put["result"]["templates"], 2);
    assert_eq!(texts.load(Ordering::SeqCst), 8, "4 classes x 2 templates");
    let image = png_b64(20, 20, 9);
    let (code, by_name) = srv
        .post("/v1/classify", json!({"image": image, "label_set": "pets"}))
        .await;
    assert_eq!(code, 200, "{by_name}");
    assert_eq!(
        texts.load(Ordering::SeqCst),
        8,
        "a set's classes are not re-encoded"
    );
    // The same answer as sending the labels themselves.
    let (_, by_labels) = srv
        .post(
            "/v1/classify",
            json!({"image": image, "labels": ["cat", "dog", "bird"], "negative_labels": ["background"],
                   "templates": ["a photo of a {}.", "a picture of a {}."]}),
        )
        .await;
    assert_eq!(by_name["result"], by_labels["result"]);
    let (code, e) = srv
        .post(
            "/v1/classify",
            json!({"image": image, "label_set": "pets", "labels": ["x"]}),
        )
        .await;
    assert_eq!(
        (code, e["error_type"].as_str()),
        (422, Some("invalid_request")),
        "{e}"
    );
    let (code, e) = srv
        .post("/v1/classify", json!({"image": image, "label_set": "nope"}))
        .await;
    assert_eq!(
        (code, e["error_type"].as_str()),
        (404, Some("label_set_not_found")),
        "{e}"
    );
    srv.stop().await.unwrap();

    // A restart keeps it.
    let srv = start(persisted(dir.path())).await;
    let (_, list) = srv.get("/v1/label-sets").await;
    assert_eq!(list["label_sets"][0]["name"], "pets", "{list}");
    assert_eq!(list["label_sets"][0]["stale"], false);
    let (code, again) = srv
        .post("/v1/classify", json!({"image": image, "label_set": "pets"}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(again["result"], by_name["result"]);
    let (code, def) = srv.get("/v1/label-sets/pets").await;
    assert_eq!(code, 200);
    assert_eq!(def["labels"], json!(["cat", "dog", "bird"]));
    assert_eq!(srv.delete("/v1/label-sets/pets").await, 204);
    assert_eq!(srv.delete("/v1/label-sets/pets").await, 404);
    assert_eq!(srv.get("/v1/label-sets/pets").await.0, 404);
    srv.stop().await.unwrap();
    let srv = start(persisted(dir.path())).await;
    assert_eq!(srv.get("/v1/label-sets").await.1["label_sets"], json!([]));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn a_label_set_of_another_model_is_reported_stale_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(persisted(dir.path())).await;
    let (code, _) = srv
        .put("/v1/label-sets/pets", json!({"labels": ["cat", "dog"]}))
        .await;
    assert_eq!(code, 200);
    srv.stop().await.unwrap();

    let mut other = persisted(dir.path());
    other.clip.model = "clip-vit-b-32".into();
    other.backend.mock.embedding_dimension = 32;
    let srv = start(other).await;
    let (_, list) = srv.get("/v1/label-sets").await;
    assert_eq!(list["label_sets"][0]["stale"], true, "{list}");
    assert_eq!(list["label_sets"][0]["model"], "clip-resnet-50x4");
    let (code, e) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(20, 20, 1), "label_set": "pets"}),
        )
        .await;
    assert_eq!(
        (code, e["error_type"].as_str()),
        (409, Some("label_set_stale")),
        "{e}"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn label_set_names_and_limits_are_checked() {
    let srv = start(mock_settings()).await;
    for bad in ["..", ".hidden", "a%2Fb"] {
        let (code, e) = srv
            .put(&format!("/v1/label-sets/{bad}"), json!({"labels": ["cat"]}))
            .await;
        assert!(code == 422 || code == 404, "{bad}: {code} {e}");
    }
    let (code, e) = srv.put("/v1/label-sets/empty", json!({"labels": []})).await;
    assert_eq!(
        (code, e["error_type"].as_str()),
        (422, Some("invalid_request")),
        "{e}"
    );
    let (code, e) = srv
        .put("/v1/label-sets/big", json!({"labels": labels(1001)}))
        .await;
    assert_eq!(code, 422, "{e}");
    assert!(
        e["error"].as_str().unwrap().contains("limits.max_labels"),
        "{e}"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn models_are_listed_as_openai_clients_expect() {
    let srv = start(mock_settings()).await;
    let (code, m) = srv.get("/v1/models").await;
    assert_eq!(code, 200);
    assert_eq!(m["object"], "list");
    let d = &m["data"][0];
    assert_eq!(d["id"], "clip-resnet-50x4");
    assert_eq!(d["object"], "model");
    assert_eq!(d["owned_by"], "hailo-clip");
    assert_eq!(d["backend"], "mock");
    assert_eq!(d["dimension"], 64);
    assert_eq!(d["input_size"], json!([32, 32]));
    assert_eq!(d["loaded"], true);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn a_thousand_labels_fit_the_default_limit() {
    let srv = start(mock_settings()).await;
    let (code, r) = srv
        .post(
            "/v1/classify",
            json!({"image": png_b64(20, 20, 2), "labels": labels(1000), "top_k": 5}),
        )
        .await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["result"].as_array().unwrap().len(), 5);
    srv.stop().await.unwrap();
}
