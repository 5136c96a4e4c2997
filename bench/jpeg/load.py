#!/usr/bin/env python3
"""Camera photos under load: N clients (wrk, keep-alive) posting one 12 MP JPEG each to
/v1/classify on the release server with the mock backend timed like a Hailo-10H
(bench/service/mock-hailo10h.yaml). One fresh server per (binary, image), so the memory figures
are that run's own:
  idle     VmRSS 1 s after READY=1 and one request
  peak     VmHWM after the load run
  after    VmRSS 5 s after the load stops (and 5 s after the server's CPU time stops moving)

    python bench/jpeg/load.py --binary NAME=PATH [--binary ...] [--env "NAME=K=V;K=V"] \
        [--clients 64] [--duration 10] IMAGE...

`--env` runs the binary NAME again under extra environment variables (glibc malloc tunables),
reported as NAME+env. Prints a table; JSON with --out.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "service"))
import run as svc  # noqa: E402  (bench/service/run.py: Server, wrk, /proc readers)

LABELS = ["cat", "dog", "car", "cup of coffee", "astronaut"]


def one(binary: Path, image: Path, clients: int, duration: int, env: dict[str, str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="hailo-clip-jpeg-"))
    cfg = work / "config.yaml"
    svc.write_config(HERE.parent / "service/mock-hailo10h.yaml", svc.free_port(), cfg)
    port = int(next(l for l in cfg.read_text().splitlines() if "port:" in l).split(":")[1])
    base = f"http://127.0.0.1:{port}"
    body = work / "body.json"
    body.write_text(json.dumps({"image": base64.b64encode(image.read_bytes()).decode(), "labels": LABELS}))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        srv = svc.Server(binary, cfg, work, work / "server.log")
        srv.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        code, resp = svc.post(base + "/v1/classify", body.read_bytes())
        if code != 200 or len(resp["result"]) != len(LABELS):
            raise RuntimeError(f"unexpected answer {code} {str(resp)[:200]}")
        time.sleep(1.0)
        idle = svc.status_kb(srv.pid)["VmRSS"]
        w1, _ = svc.run_wrk(base + "/v1/classify", body, 1, max(3, duration // 2), HERE.parent / "service/post.lua")
        m0, cpu0, t0 = svc.metrics(base), svc.cpu_seconds(srv.pid), time.perf_counter()
        w, _ = svc.run_wrk(base + "/v1/classify", body, clients, duration, HERE.parent / "service/post.lua")
        wall = time.perf_counter() - t0
        m1, cpu1 = svc.metrics(base), svc.cpu_seconds(srv.pid)
        peak = svc.status_kb(srv.pid)["VmHWM"]
        time.sleep(5.0)
        after = svc.status_kb(srv.pid)["VmRSS"]
        # On a busy machine the server may still be working through requests the clients gave
        # up on; also report RSS 5 s after its CPU time stops moving.
        prev = svc.cpu_seconds(srv.pid)
        while True:
            time.sleep(0.5)
            now = svc.cpu_seconds(srv.pid)
            if now - prev < 0.01:
                break
            prev = now
        time.sleep(5.0)
        after_idle = svc.status_kb(srv.pid)["VmRSS"]
        batches = m1["batches"] - m0["batches"]
        return {
            "rps": round(w["requests"] / (w["duration_us"] / 1e6), 1),
            "errors": w["errors"],
            "p50_ms": round(w["latency_us"]["p50"] / 1000, 1),
            "p99_ms": round(w["latency_us"]["p99"] / 1000, 1),
            "one_client_p50_ms": round(w1["latency_us"]["p50"] / 1000, 2),
            "cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / max(w["requests"], 1), 2),
            "mean_batch": round((m1["batch_sum"] - m0["batch_sum"]) / batches, 2) if batches else 0,
            "device_busy_pct": round((m1["device_s"] - m0["device_s"]) / wall * 100, 1),
            "idle_mb": round(idle / 1024, 1),
            "peak_mb": round(peak / 1024, 1),
            "after_5s_mb": round(after / 1024, 1),
            "after_idle_5s_mb": round(after_idle / 1024, 1),
        }
    finally:
        srv.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--env", action="append", default=[], help="NAME=K=V;K=V: binary NAME again with these")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out", type=Path)
    ap.add_argument("images", nargs="+", type=Path)
    a = ap.parse_args()
    bins = dict(b.split("=", 1) for b in a.binary)
    variants = [(name, Path(p), {}) for name, p in bins.items()]
    for e in a.env:
        name, _, kvs = e.partition("=")
        env = dict(kv.split("=", 1) for kv in kvs.split(";"))
        variants.append((f"{name}+{kvs}", Path(bins[name]), env))
    rows = []
    for image in a.images:
        for name, path, env in variants:
            r = one(path, image, a.clients, a.duration, env)
            r.update(binary=name, image=image.name, image_mb=round(image.stat().st_size / 1e6, 2))
            rows.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    cols = ["image", "binary", "rps", "p50_ms", "p99_ms", "one_client_p50_ms", "cpu_ms_per_req", "mean_batch",
            "device_busy_pct", "idle_mb", "peak_mb", "after_5s_mb", "after_idle_5s_mb"]
    table = [cols] + [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(cols))]
    print(f"\n{a.clients} clients, {a.duration} s, POST /v1/classify, mock Hailo-10H timing, {os.cpu_count()} CPUs")
    for i, t in enumerate(table):
        print("  ".join(c.ljust(widths[j]) for j, c in enumerate(t)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
