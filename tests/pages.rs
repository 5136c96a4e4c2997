//! The page at `/`, the reference at `/docs` and `/openapi.json`: served from the binary with
//! no outside assets, outside the API key, and switched off by `server.web_ui`.
//! (web/browser-test.mjs drives the page in headless Chromium.)

mod common;

use common::{mock_settings, start};

#[tokio::test]
async fn pages_are_built_in_and_self_contained() {
    let srv = start(mock_settings()).await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/docs", "text/html"),
        ("/docs/rapidoc-min.js", "text/javascript"),
        ("/openapi.json", "application/json"),
    ] {
        let r = srv.client.get(srv.at(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        if kind == "text/html" {
            let csp = r.headers()["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"));
            let body = r.text().await.unwrap();
            // Every script, style and link stays on this origin.
            for attr in ["src=\"http", "href=\"http", "url(http", "@import"] {
                assert!(!body.contains(attr), "{path} refers outside: {attr}");
            }
        }
    }
    let (_, spec) = srv.get("/openapi.json").await;
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/classify"]["post"].is_object());
}

#[tokio::test]
async fn pages_need_no_key_and_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "s3cret\n").unwrap();
    let mut s = mock_settings();
    s.server.api_key_file = Some(key);
    let srv = start(s.clone()).await;
    for path in ["/", "/docs", "/openapi.json"] {
        assert_eq!(srv.get_text(path).await.0, 200, "{path}");
    }
    assert_eq!(srv.get("/v1/models").await.0, 401);
    srv.stop().await.unwrap();

    s.server.web_ui = false;
    s.server.api_key_file = None;
    let srv = start(s).await;
    for path in ["/", "/docs", "/docs/rapidoc-min.js"] {
        let (code, body) = srv.get(path).await;
        assert_eq!(
            (code, body["error_type"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    assert_eq!(srv.get_text("/openapi.json").await.0, 200);
}
