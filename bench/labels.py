#!/usr/bin/env python3
"""Server time of a classify against 1,000 cached labels, and restart-to-first-answer with the
persisted text cache.

  python3 bench/labels.py --binary target/release/hailo-clip [--base PATH] [--requests 200]

The mock backend runs with no modelled device time and the image is a 32x32 PNG, so a
request's latency on loopback is the service's own work: JSON with 1,000 labels in and 1,000
scores out, prompts, cache look-ups, template ensembles, dot products, softmax, sorting.
Rows: `labels` sends the 1,000 labels (text cache warm); `label_set` classifies against a stored
label set of the same labels (new binaries only). With --base, the same rows for that binary,
alternating runs so both see the same machine load. Then: a server with cache.persist gets the
1,000 labels, stops (SIGTERM), starts again; the time from spawn to the first 200 answer of the
1,000-label classify, and how many texts reached the text encoder then (from /metrics: the
texts the device thread encoded; the warm-up probe bypasses the queue and is not counted).
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
from localproc import free_port  # noqa: E402


def png(w: int, h: int) -> bytes:
    raw = b"".join(b"\x00" + bytes((x * 7 + y * 3) % 256 for x in range(w * 3)) for y in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


LABELS = [f"class number {i}" for i in range(1000)]
IMAGE = base64.b64encode(png(32, 32)).decode()


def config(port: int, cache_dir: str | None) -> str:
    c = (f"server:\n  host: 127.0.0.1\n  port: {port}\nlogging:\n  level: warn\n"
         "limits:\n  max_labels: 1000\n"
         "backend:\n  type: mock\n  mock:\n    embedding_dimension: 640\n    image_size: 288\n")
    if cache_dir:
        c += f"cache:\n  persist: true\n  dir: {cache_dir}\n"
    return c


class Server:
    def __init__(self, binary: str, cache_dir: str | None = None):
        self.port = free_port()
        self.tmp = tempfile.mkdtemp()
        cfg = Path(self.tmp) / "c.yaml"
        cfg.write_text(config(self.port, cache_dir))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([binary, "serve", "--config", str(cfg)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        for _ in range(2000):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                data = json.dumps(body).encode() if body is not None else None
                headers = {"content-type": "application/json"} if data else {}
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (ConnectionRefusedError, http.client.RemoteDisconnected, BrokenPipeError):
                self.conn = None
                time.sleep(0.005)
        raise RuntimeError("server did not answer")

    def ready(self) -> None:
        while self.request("GET", "/health")[0] != 200:
            time.sleep(0.005)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def timed(srv: Server, body: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        code, resp = srv.request("POST", "/v1/classify", body)
        out.append((time.perf_counter() - t) * 1000)
        assert code == 200, resp[:300]
    return out


def rows(binary: str, n: int) -> dict[str, list[float]]:
    srv = Server(binary)
    try:
        srv.ready()
        by_labels = {"image": IMAGE, "labels": LABELS, "top_k": 5}
        timed(srv, by_labels, 3)  # fills the text cache
        res = {"labels": timed(srv, by_labels, n)}
        code, _ = srv.request("PUT", "/v1/label-sets/bench", {"labels": LABELS})
        if code == 200:
            by_set = {"image": IMAGE, "label_set": "bench", "top_k": 5}
            timed(srv, by_set, 3)
            res["label_set"] = timed(srv, by_set, n)
        return res
    finally:
        srv.stop()


def texts_encoded(srv: Server) -> float:
    _, m = srv.request("GET", "/metrics")
    hit = re.search(rb'hailo_clip_batch_size_sum\{kind="text"[^}]*\} ([0-9.e+]+)', m)
    return float(hit.group(1)) if hit else 0.0


def restart(binary: str) -> dict:
    cache = tempfile.mkdtemp()
    body = {"image": IMAGE, "labels": LABELS, "top_k": 5}
    srv = Server(binary, cache)
    srv.ready()
    assert srv.request("POST", "/v1/classify", body)[0] == 200
    srv.stop()
    srv = Server(binary, cache)
    try:
        srv.ready()
        ready_ms = (time.perf_counter() - srv.started) * 1000
        # The cache loads in the background after start; wait for it as a client would see it.
        while json.loads(srv.request("GET", "/info")[1])["text_cache"]["persist"]["loaded"] is None:
            time.sleep(0.002)
        loaded_ms = (time.perf_counter() - srv.started) * 1000
        code, _ = srv.request("POST", "/v1/classify", body)
        first_ms = (time.perf_counter() - srv.started) * 1000
        assert code == 200
        return {"ready_ms": ready_ms, "cache_loaded_ms": loaded_ms, "first_answer_ms": first_ms,
                "texts_encoded_after_restart": texts_encoded(srv),
                "cache_file_bytes": sum(p.stat().st_size for p in Path(cache).iterdir() if p.is_file())}
    finally:
        srv.stop()


def summary(xs: list[float]) -> str:
    xs = sorted(xs)
    return (f"median {statistics.median(xs):7.3f} ms  p90 {xs[int(len(xs) * 0.9)]:7.3f} ms  "
            f"min {xs[0]:7.3f} ms  (n={len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--base")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    bins = [("new", a.binary)] + ([("base", a.base)] if a.base else [])
    results: dict[str, dict[str, list[float]]] = {k: {} for k, _ in bins}
    for _ in range(a.rounds):
        for name, b in bins:
            for k, v in rows(b, a.requests).items():
                results[name].setdefault(k, []).extend(v)
    for name, _ in bins:
        for k, v in results[name].items():
            print(f"{name:5} classify 1,000 {k:10} {summary(v)}")
    r = restart(a.binary)
    print("restart with the persisted cache (new): "
          + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
