//! The transport and the door, over real sockets: HTTPS with a certificate made here (and its
//! reload), plain HTTP to the HTTPS port, per-client rate limits, the Host allow-list, the
//! in-flight bound.

mod common;

use common::{mock_settings, start};
use config::TlsSettings;
use serde_json::json;
use std::io::{Read, Write};

struct Cert {
    pem: String,
    key: String,
}

fn self_signed() -> Cert {
    let k =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    Cert {
        pem: k.cert.pem(),
        key: k.key_pair.serialize_pem(),
    }
}

fn tls_client(ca: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_with_a_certificate_that_is_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = self_signed();
    std::fs::write(&cert_file, &first.pem).unwrap();
    std::fs::write(&key_file, &first.key).unwrap();
    let mut s = mock_settings();
    s.server.tls = Some(TlsSettings {
        cert_file: cert_file.clone(),
        key_file: key_file.clone(),
    });
    let srv = start(s).await;
    let https = srv
        .url
        .replace("http://", "https://")
        .replace("127.0.0.1", "localhost");

    let r = tls_client(&first.pem)
        .get(format!("{https}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Plain HTTP to the HTTPS port: a plain answer that says so, not a garbled handshake.
    let addr = srv.url.trim_start_matches("http://").to_string();
    let plain = tokio::task::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(plain.starts_with("HTTP/1.1 400"), "{plain}");
    assert!(plain.contains("HTTPS"), "{plain}");

    // A new certificate in the files is served without a restart (checked at most once a second).
    let second = self_signed();
    std::fs::write(&cert_file, &second.pem).unwrap();
    std::fs::write(&key_file, &second.key).unwrap();
    let mut served_new = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Ok(r) = tls_client(&second.pem)
            .get(format!("{https}/health"))
            .send()
            .await
        {
            served_new = r.status() == 200;
            if served_new {
                break;
            }
        }
    }
    assert!(served_new, "the renewed certificate is served");
    assert!(
        tls_client(&first.pem)
            .get(format!("{https}/health"))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_certificate_file_is_a_startup_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let mut s = mock_settings();
    s.server.tls = Some(TlsSettings {
        cert_file: dir.path().join("cert.pem"),
        key_file: dir.path().join("key.pem"),
    });
    let models = engine::Models::start(&s).unwrap();
    let listener = hailo_clip_http::bind(&s).await.unwrap();
    let err = hailo_clip_http::serve_models(models, listener, async {}, std::time::Instant::now())
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("server.tls.cert_file"),
        "{err:#}"
    );
}

#[tokio::test]
async fn clients_over_their_rate_get_429_with_retry_after() {
    let mut s = mock_settings();
    s.limits.client_requests_per_second = 1.0;
    s.limits.client_burst = 3;
    let srv = start(s).await;
    let mut codes = Vec::new();
    let mut retry = None;
    for _ in 0..5 {
        let r = srv.client.get(srv.at("/v1/models")).send().await.unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            retry = r.headers().get("retry-after").cloned();
            let b: serde_json::Value = r.json().await.unwrap();
            assert_eq!(b["error_type"], "rate_limited");
        }
    }
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert!(codes[3..].iter().all(|&c| c == 429), "{codes:?}");
    assert_eq!(retry.unwrap(), "1");
    // /health is not rate-limited: monitoring keeps working.
    assert_eq!(srv.get("/health").await.0, 200);
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn unknown_host_names_are_refused_and_configured_ones_served() {
    let mut s = mock_settings();
    s.server.allowed_hosts = vec!["clip.example.org".into()];
    let srv = start(s).await;
    let get = |host: &'static str| {
        let c = srv.client.clone();
        let url = srv.at("/info");
        async move {
            let r = c.get(url).header("host", host).send().await.unwrap();
            let code = r.status().as_u16();
            let b: serde_json::Value = r.json().await.unwrap_or_default();
            (code, b["error_type"].as_str().unwrap_or("").to_string())
        }
    };
    assert_eq!(
        get("evil.example:5000").await,
        (421, "host_not_allowed".into())
    );
    assert_eq!(get("clip.example.org").await.0, 200);
    assert_eq!(get("localhost:5000").await.0, 200);
    assert_eq!(get("10.1.2.3:5000").await.0, 200);
    srv.stop().await.unwrap();
}

/// A text embedding posted in the background (the text encoder's latency makes it slow); its status.
fn slow_request(srv: &common::TestServer) -> tokio::task::JoinHandle<u16> {
    let c = srv.client.clone();
    let url = srv.at("/v1/embed/text");
    tokio::spawn(async move {
        c.post(url)
            .json(&json!({"text": "a slow one"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// A server with one in-flight slot, `limits.admission_wait_ms` of `wait_ms`, and a text
/// encoder that takes `text_ms` per request.
async fn one_slot_server(wait_ms: u64, text_ms: f64) -> common::TestServer {
    let mut s = mock_settings();
    s.limits.max_in_flight = 1;
    s.limits.admission_wait_ms = wait_ms;
    s.backend.mock.latency.text_fixed_ms = text_ms;
    start(s).await
}

/// A server with one in-flight slot and a 400 ms text encoder, a slow request holding that
/// slot, and what a second request gets meanwhile.
async fn second_request_with_one_slot(wait_ms: u64) -> (u16, serde_json::Value) {
    let srv = one_slot_server(wait_ms, 400.0).await;
    let slow = slow_request(&srv);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = srv.post("/v1/embed/text", json!({"text": "another"})).await;
    assert_eq!(slow.await.unwrap(), 200);
    // GETs are not counted against the bound.
    assert_eq!(srv.get("/v1/models").await.0, 200);
    srv.stop().await.unwrap();
    second
}

#[tokio::test]
async fn requests_past_the_in_flight_bound_are_refused_before_their_body() {
    let (code, b) = second_request_with_one_slot(0).await;
    assert_eq!(
        (code, b["error_type"].as_str()),
        (429, Some("overloaded")),
        "{b}"
    );
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_in_flight"),
        "{b}"
    );
    // With a wait at the door, a request that finds the slots full waits for one instead.
    let (code, b) = second_request_with_one_slot(5000).await;
    assert_eq!(code, 200, "{b}");
}

/// With every slot taken and the wait it could expect longer than `limits.admission_wait_ms`,
/// a request is refused at once (before the slow one ends), with that wait as `Retry-After`;
/// the next request on the same connection, sent at once regardless, is held until then and
/// so finds the slot free.
#[tokio::test]
async fn a_hopeless_wait_is_refused_at_once_and_the_connection_held_to_retry_after() {
    let srv = one_slot_server(200, 900.0).await;
    // One request through first, so the door has seen how long a slot is held (~900 ms).
    assert_eq!(
        srv.post("/v1/embed/text", json!({"text": "warm"})).await.0,
        200
    );
    let slow = slow_request(&srv);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let one = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let url = srv.at("/v1/embed/text");
    let r = one
        .post(&url)
        .json(&json!({"text": "second"}))
        .send()
        .await
        .unwrap();
    assert!(
        !slow.is_finished(),
        "refused only after the slow request ended"
    );
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    r.bytes().await.unwrap();
    let again = one
        .post(&url)
        .json(&json!({"text": "third"}))
        .send()
        .await
        .unwrap();
    assert!(
        slow.is_finished(),
        "the next request was not held to its Retry-After"
    );
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(slow.await.unwrap(), 200);
    srv.stop().await.unwrap();
}

/// A client that leaves while waiting at the door leaves the waiters: with room for one waiter,
/// the next request after it may wait too and is served, instead of being refused as if the
/// first still waited.
#[tokio::test]
async fn a_waiter_that_leaves_frees_its_place_in_the_wait() {
    let srv = one_slot_server(5000, 900.0).await;
    let slow = slow_request(&srv);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let gone = srv
        .post_giving_up(
            "/v1/embed/text",
            json!({"text": "gone"}),
            std::time::Duration::from_millis(150),
        )
        .await;
    assert!(gone.is_err(), "the impatient client was answered: {gone:?}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (code, r) = srv.post("/v1/embed/text", json!({"text": "patient"})).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(slow.await.unwrap(), 200);
    srv.stop().await.unwrap();
}
