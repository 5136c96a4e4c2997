//! The binary as systemd and an operator use it: readiness, graceful stop, config rendering and errors.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hailo-clip");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn mock_yaml(port: u16, extra: &str) -> String {
    format!(
        "server:\n  host: 127.0.0.1\n  port: {port}\n  shutdown_grace_secs: 10\nbackend:\n  type: mock\n  mock:\n    embedding_dimension: 32\n    image_size: 16\n{extra}"
    )
}

/// Spawns `serve` with NOTIFY_SOCKET pointing at our own socket, as systemd's Type=notify does.
fn spawn_notified(dir: &Path, config: &Path) -> (Child, UnixDatagram) {
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("JOURNAL_STREAM", "8:1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, sock)
}

fn wait_ready(sock: &UnixDatagram) {
    let mut buf = [0u8; 256];
    loop {
        let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
        if String::from_utf8_lossy(&buf[..n]).contains("READY=1") {
            return;
        }
    }
}

fn body(image_side: u32) -> String {
    use base64::Engine as _;
    let img = image::RgbImage::from_fn(image_side, image_side, |x, y| {
        image::Rgb([x as u8, y as u8, 1])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    serde_json::json!({"image": base64::engine::general_purpose::STANDARD.encode(out.into_inner()), "labels": ["a", "b"]})
        .to_string()
}

/// Minimal blocking HTTP/1.1 POST, so the test controls exactly one connection.
fn post(port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, resp))
}

#[test]
fn notifies_ready_and_drains_in_flight_requests_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = write(
        dir.path(),
        "c.yaml",
        &mock_yaml(port, "    latency:\n      image_fixed_ms: 1500\n"),
    );
    let (mut child, sock) = spawn_notified(dir.path(), &cfg);
    wait_ready(&sock);
    let b = body(20);
    let inflight = std::thread::spawn(move || post(port, "/v1/classify", &b));
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    // systemd hears that we are stopping.
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    // New connections are refused while the old request finishes.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        post(port, "/health", "").is_err(),
        "listener must be closed after SIGTERM"
    );
    let (code, resp) = inflight
        .join()
        .unwrap()
        .expect("in-flight request answered");
    assert_eq!(code, 200, "{resp}");
    assert!(resp.contains("\"result\""));
    let status = child.wait().unwrap();
    assert!(status.success(), "exit 0 after drain, got {status:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // Under journald the journal stamps lines; ours must not add a second timestamp.
    let first = err.lines().next().unwrap_or_default();
    assert!(
        !first.starts_with("20"),
        "no timestamp under JOURNAL_STREAM: {first}"
    );
    assert!(
        err.contains("route=\"/v1/classify\"") || err.contains("route=/v1/classify"),
        "request log line: {err}"
    );
}

fn render(input: &Path, output: &Path) {
    let st = Command::new(BIN)
        .args(["render-config", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn render_config_applies_defaults_and_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.yaml",
        "server:\n  port: 5001\nclip:\n  model: clip-resnet-50x4\n  embedding_dimension: 640\n  image_size: 288\nbackend:\n  type: mock\n",
    );
    let out = dir.path().join("sub/out.json");
    render(&input, &out);
    let first = std::fs::read(&out).unwrap();
    render(&input, &out);
    assert_eq!(
        first,
        std::fs::read(&out).unwrap(),
        "re-render must be byte-identical"
    );
    let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(v["server"]["port"], 5001);
    assert_eq!(v["server"]["host"], "127.0.0.1");
    assert_eq!(v["backend"]["type"], "mock");
    assert_eq!(v["batching"]["queue_capacity"], 128);
    assert_eq!(v["clip"]["prompt_template"], "a photo of a {}.");
    // Rendering the rendered JSON again changes nothing.
    let out2 = dir.path().join("out2.json");
    render(&out, &out2);
    assert_eq!(first, std::fs::read(&out2).unwrap());
    // No temp files left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

fn serve_error(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "bad.yaml", yaml);
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success(), "bad config must not start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn config_errors_name_the_key() {
    let e = serve_error("clip:\n  modle: x\n");
    assert!(e.contains("clip") && e.contains("modle"), "{e}");
    let e = serve_error("server:\n  port: not-a-port\n");
    assert!(e.contains("server.port"), "{e}");
    let e = serve_error("batching:\n  max_batch_size: 0\n");
    assert!(e.contains("batching.max_batch_size"), "{e}");
    let e = serve_error("backend:\n  type: gpu\n");
    assert!(e.contains("backend.type"), "{e}");
    let e = serve_error("clip:\n  prompt_template: no placeholder\n");
    assert!(e.contains("clip.prompt_template"), "{e}");
}

#[test]
fn warmup_failure_stops_start_with_the_reason() {
    // The seed's 224 is wrong for a model that takes another size: start must fail and say so.
    let port = free_port();
    let e = serve_error(&format!(
        "{}clip:\n  image_size: 224\n",
        mock_yaml(port, "")
    ));
    assert!(
        e.contains("clip.image_size is 224") && e.contains("16x16"),
        "{e}"
    );
}

#[test]
fn hailo_without_feature_says_how_to_fix() {
    let port = free_port();
    let e = serve_error(&format!(
        "server:\n  host: 127.0.0.1\n  port: {port}\nbackend:\n  type: hailo\n"
    ));
    assert!(e.contains("hailo"), "{e}");
}

#[test]
fn classify_and_embed_commands_run_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.yaml", &mock_yaml(free_port(), ""));
    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/cat.jpg");
    let out = Command::new(BIN)
        .arg("classify")
        .arg(&img)
        .args(["--label", "cat", "--label", "dog", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "mock");
    assert_eq!(v["result"].as_array().unwrap().len(), 2);
    let out = Command::new(BIN)
        .args(["embed", "--text", "a photo of a cat.", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"].as_array().unwrap().len(), 32);
}
