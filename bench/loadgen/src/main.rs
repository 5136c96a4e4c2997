//! Polite HTTP/1.1 load: `loadgen PORT CONNECTIONS SECONDS REQUEST_FILE`.
//!
//! Each connection sends the request in REQUEST_FILE (head and body, as sent on the wire), reads
//! the answer, and after a 429 waits the `Retry-After` it names before the next one, as HTTP asks
//! of clients. Every answer's status and latency (first byte written to last byte read) goes to
//! stdout, one `status ms at_ms` line each (at_ms: when it was sent, from the start), then `errors N` (connections that failed or were reset).
//! One thread: the clients must cost the 2-core machine little beside the server they measure.
//! LOADGEN_RAMP_MS: the clients start at even steps over that time instead of all at once.

use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    close: bool,
}

/// Reads one response off `s`; `buf` keeps bytes read past it (none, for a client that waits).
async fn read_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Answer> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .map(|v| v.trim_start_matches(':').trim())
            })
            .map(str::to_string)
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| bad("no content-length"))?;
    let answer = Answer {
        status,
        retry_after: header("retry-after").and_then(|v| v.parse().ok()),
        close: header("connection").is_some_and(|v| v == "close"),
    };
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.drain(..head_end + length);
    Ok(answer)
}

async fn client(
    port: u16,
    request: &'static [u8],
    start: Instant,
    deadline: Instant,
) -> (Vec<(u16, f64, f64)>, u64) {
    let (mut samples, mut errors) = (Vec::new(), 0);
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::new();
    while Instant::now() < deadline {
        let s = match conn.as_mut() {
            Some(s) => s,
            None => match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => conn.insert(s),
                Err(_) => {
                    errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let t0 = Instant::now();
        let got = async {
            s.write_all(request).await?;
            read_answer(s, &mut buf).await
        }
        .await;
        match got {
            Ok(a) => {
                samples.push((
                    a.status,
                    t0.elapsed().as_secs_f64() * 1000.0,
                    (t0 - start).as_secs_f64() * 1000.0,
                ));
                if a.close {
                    conn = None;
                    buf.clear();
                }
                if a.status == 429 {
                    let secs = a.retry_after.unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(secs)).await;
                }
            }
            Err(_) => {
                errors += 1;
                conn = None;
                buf.clear();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    (samples, errors)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: loadgen PORT CONNECTIONS SECONDS REQUEST_FILE");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("PORT");
    let connections: usize = args[2].parse().expect("CONNECTIONS");
    let secs: u64 = args[3].parse().expect("SECONDS");
    let request: &'static [u8] =
        Vec::leak(std::fs::read(&args[4]).expect("REQUEST_FILE is readable"));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let ramp: u64 = std::env::var("LOADGEN_RAMP_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            let delay = Duration::from_millis(ramp * i as u64 / connections.max(1) as u64);
            tokio::task::spawn(async move {
                tokio::time::sleep(delay).await;
                client(port, request, start, deadline).await
            })
        })
        .collect();
    let mut out = String::new();
    let mut errors = 0;
    for t in tasks {
        let (samples, e) = t.await.expect("a client task");
        errors += e;
        for (status, ms, at) in samples {
            out.push_str(&format!("{status} {ms:.3} {at:.1}\n"));
        }
    }
    out.push_str(&format!("errors {errors}\n"));
    std::io::stdout().write_all(out.as_bytes()).expect("stdout");
}
