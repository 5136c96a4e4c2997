#!/usr/bin/env python3
"""Overload benchmark: 1,000 keep-alive clients against the release server with the mock timed
like a Hailo-10H (bench/service/mock-hailo10h.yaml: 157 img/s at batch 8).

Two kinds of client (--clients):
  wrk      wrk (one thread, --connections 1000) posts the 640x480 JPEG classify for --duration
           seconds and retries at once whatever the answer; beside it, a probe of 16 keep-alive
           connections posts the same request in a loop and records each answer's status and
           latency (wrk gives no per-status latency), so the 429s' latency is measured from a
           client.
  polite   1,000 keep-alive connections (bench/loadgen: one thread of tokio, so the clients
           take little of the cores the server is measured on) that post the same request and,
           after a 429, wait the Retry-After it names before the next, as HTTP asks of clients
           (the OpenAI client and Immich's do); every answer's status and latency is recorded.
Reported:
  answered_200_per_s   from the server's own counter (/metrics) over the run
  share_of_device      answered_200_per_s / 157
  p50/p99 of 429       from the probe's refused requests (polite: from every client's, and the
                       p99 of those sent from 2 s on, after the start's herd)
  socket errors        wrk's connect/read/write/timeout counts
  RSS                  idle after READY, peak (VmHWM), and 5 s after the load
  healthy_after        GET /health == 200 after the run

    python3 bench/overload.py [--binary target/release/hailo-clip] [--duration 30] [--out f.json]
                              [--clients wrk|polite] [--ramp-ms 1000] [--samples answers.txt]

wrk needs wrk on PATH (bench/service.sh installs it); polite builds bench/loadgen with cargo the
first time (and again when it changes). Both need an open-file limit above the connections.
"""

import argparse
import base64
import http.client
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tools"))
from localproc import free_port, rss_mb  # noqa: E402
CAPACITY = 8 / (10.886 + 8 * 5.014) * 1000.0


def metric_200(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("hailo_clip_requests_total") and 'route="/v1/classify"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


LOADGEN = REPO / "bench/loadgen/target/release/hailo-clip-loadgen"


def polite_load(port, body, connections, duration, ramp_ms):
    """Keep-alive clients that honour Retry-After (bench/loadgen, built here: cargo does
    nothing when it is up to date, and an edited one is never measured stale);
    returns ([(status, ms, sent_at_ms)], socket_errors)."""
    subprocess.run(["cargo", "build", "--release", "--quiet", "--manifest-path",
                    str(REPO / "bench/loadgen/Cargo.toml")], check=True)
    head = (f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with tempfile.NamedTemporaryFile(suffix=".http") as f:
        f.write(head + body.encode())
        f.flush()
        out = subprocess.run([str(LOADGEN), str(port), str(connections), str(duration), f.name],
                             check=True, capture_output=True, text=True,
                             env=dict(os.environ, LOADGEN_RAMP_MS=str(ramp_ms))).stdout
    samples, errors = [], 0
    for line in out.splitlines():
        f = line.split()
        if f[0] == "errors":
            errors = int(f[1])
        else:
            samples.append((int(f[0]), float(f[1]), float(f[2])))
    return samples, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "target/release/hailo-clip"))
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--clients", choices=["wrk", "polite"], default="wrk")
    ap.add_argument("--out")
    ap.add_argument("--ramp-ms", type=int, default=0,
                    help="polite: start the clients at even steps over this time (0: all at once)")
    ap.add_argument("--samples", help="write every answer as 'status ms [sent_at_ms]' lines here")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="hc-overload-"))
    cfg = (HERE / "service/mock-hailo10h.yaml").read_text().replace("port: 5000", f"port: {port}")
    (tmp / "c.yaml").write_text(cfg)
    img = base64.b64encode((REPO / "tests/fixtures/images/bench-640x480.jpg").read_bytes()).decode()
    body = json.dumps({"image": img, "labels": ["cat", "dog", "car", "cup of coffee", "astronaut"]})
    (tmp / "body.json").write_text(body)
    log = open(tmp / "server.log", "w")
    srv = subprocess.Popen([a.binary, "serve", "--config", str(tmp / "c.yaml")], stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, XDG_DATA_HOME=str(tmp)))
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.05)
    # Warm the text cache, then settle.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/classify", body=body, headers={"Content-Type": "application/json"})
    c.getresponse().read()
    time.sleep(1)
    idle = rss_mb(srv.pid)

    stop = threading.Event()
    samples = []

    def probe():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                c.request("POST", "/v1/classify", body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                samples.append((r.status, (time.perf_counter() - t0) * 1000))
            except OSError:
                samples.append((0, 0.0))
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    before = metric_200(port)
    t0 = time.time()
    if a.clients == "wrk":
        wrk = subprocess.Popen(
            ["wrk", "-t1", f"-c{a.connections}", f"-d{a.duration}s", "--timeout", "10s", "-s", str(HERE / "service/post.lua"), f"http://127.0.0.1:{port}/v1/classify"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, BENCH_BODY=str(tmp / "body.json")),
        )
        time.sleep(1)
        probes = [threading.Thread(target=probe, daemon=True) for _ in range(16)]
        [p.start() for p in probes]
        out, _ = wrk.communicate()
        m = re.search(r"WRK_JSON (\{.*\})", out)
        w = json.loads(m.group(1)) if m else {}
    else:
        samples, socket_errors = polite_load(port, body, a.connections, a.duration, a.ramp_ms)
        w = {"requests": len(samples), "errors": {"connect": socket_errors, "read": 0, "write": 0, "timeout": 0}}
    elapsed = time.time() - t0
    stop.set()
    if a.clients == "wrk":
        [p.join(5) for p in probes]
    after = metric_200(port)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    refusals = {m.group(1): float(m.group(2)) for m in re.finditer(r'hailo_clip_refused_total\{reason="([a-z_]+)"\} ([0-9.e+]+)', c.getresponse().read().decode())}
    peak = rss_mb(srv.pid, "VmHWM")
    time.sleep(5)
    rss_after = rss_mb(srv.pid)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/health")
    healthy = c.getresponse().status == 200
    srv.terminate()
    srv.wait(30)

    refused = sorted(x[1] for x in samples if x[0] == 429)
    # polite samples carry when they were sent: the tail of a start in the same millisecond
    # (every client at once) against the steady state after it.
    later = sorted(x[1] for x in samples if x[0] == 429 and len(x) > 2 and x[2] >= 2000)
    ok_probe = [x[1] for x in samples if x[0] == 200]
    other = sorted({x[0] for x in samples if x[0] not in (200, 429)})
    rate = (after - before) / elapsed
    q = lambda xs, p: xs[min(len(xs) - 1, int(len(xs) * p))] if xs else None
    r = {
        "clients": a.clients,
        "ramp_ms": a.ramp_ms if a.clients == "polite" else 0,
        "connections": a.connections,
        "duration_s": a.duration,
        "answered_200_per_s": round(rate, 1),
        "share_of_device": round(rate / CAPACITY, 3),
        "probe": {"refused": len(refused), "answered": len(ok_probe), "other_statuses": other,
                  "p50_429_ms": q(refused, 0.5), "p90_429_ms": q(refused, 0.9),
                  "p99_429_ms": q(refused, 0.99),
                  "429_over_100_ms": sum(1 for ms in refused if ms > 100),
                  "p99_429_ms_from_2s": q(later, 0.99),
                  "p50_200_ms": q(sorted(ok_probe), 0.5)},
        "refused_at_door": refusals,
        "load": {"requests": w.get("requests"), "errors": w.get("errors")},
        "rss_mb": {"idle": round(idle, 1), "peak": round(peak, 1), "5s_after": round(rss_after, 1)},
        "healthy_after": healthy,
    }
    print(json.dumps(r, indent=2))
    targets = {
        ">= 95% of 157 img/s answered 200": r["share_of_device"] >= 0.95,
        "429 p99 <= 20 ms": (r["probe"]["p99_429_ms"] or 1e9) <= 20,
        "0 client socket errors": w and all(w["errors"][k] == 0 for k in ("connect", "read", "write", "timeout")),
        "peak RSS <= 200 MB": peak <= 200,
        "RSS 5 s after <= 2x idle + 16 MB": rss_after <= 2 * idle + 16,
        "healthy after": healthy,
    }
    for k, v in targets.items():
        print(("MET    " if v else "MISSED ") + k)
    if a.samples:
        Path(a.samples).write_text("".join(" ".join(map(str, x)) + "\n" for x in samples))
    if a.out:
        Path(a.out).write_text(json.dumps({"result": r, "targets": targets}, indent=2))


if __name__ == "__main__":
    main()
