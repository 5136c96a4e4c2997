#!/usr/bin/env python3
"""Request-overhead benchmark of the release server with the mock backend timed like a Hailo-10H.

Starts `hailo-clip serve` under a NOTIFY_SOCKET listener (as systemd Type=notify would), then:
  start-to-ready  process spawn -> READY=1 datagram, over --starts spawns
  RSS             VmRSS right after READY (idle), VmHWM after all load runs (peak)
  load            wrk, one thread, N keep-alive connections, fixed time per run, on
                  POST /v1/classify (5 labels, text cache warm) and POST /v1/embed/image,
                  both with the 640x480 JPEG fixture base64-encoded in the body
Per run it also reads the server's CPU time (/proc/PID/stat), wrk's CPU time (rusage) and the
device-side metrics (/metrics: batch sizes, device busy time), so a missed target can be explained.

Standard library only; wrk must be on PATH. Only 127.0.0.1 is used.
Prints a table and writes everything as JSON (--out).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from localproc import cpu_seconds, free_port, status_kb  # noqa: E402,F401  (bench/jpeg/load.py uses them through this module)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
IMAGE = REPO / "tests/fixtures/images/bench-640x480.jpg"
LABELS = ["cat", "dog", "car", "cup of coffee", "astronaut"]

# Hailo-10H RN50x4 device model, as in mock-hailo10h.yaml.
FIXED_MS, PER_ITEM_MS = 10.886, 5.014
DEVICE_MS_B1 = FIXED_MS + PER_ITEM_MS
CAPACITY_B8 = 8 / (FIXED_MS + 8 * PER_ITEM_MS) * 1000.0

TARGETS = {
    "throughput_64_min_rps": 0.97 * CAPACITY_B8,
    "overhead_p50_1_max_ms": 1.5,
    "overhead_p99_1_max_ms": 3.0,
    "idle_rss_max_mb": 40.0,
    "start_to_ready_max_ms": 150.0,
}

def write_config(template: Path, port: int, out: Path) -> None:
    text = template.read_text()
    text, n = re.subn(r"(?m)^(\s+port:)\s*\d+\s*$", rf"\1 {port}", text)
    if n != 1:
        sys.exit(f"{template}: expected exactly one server port line")
    out.write_text(text)


class Server:
    """One `hailo-clip serve` process, started and timed against its READY=1 notification."""

    def __init__(self, binary: Path, config: Path, workdir: Path, log: Path):
        self.binary, self.config, self.workdir, self.log = binary, config, workdir, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> float:
        sock_path = self.workdir / "notify.sock"
        sock_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
        env.pop("RUST_LOG", None)
        # XDG dirs inside the scratch dir: the server must not read the caller's config or state.
        env["XDG_CONFIG_HOME"] = str(self.workdir / "config")
        env["XDG_DATA_HOME"] = str(self.workdir / "data")
        logf = open(self.log, "ab")
        deadline = time.monotonic() + timeout
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(self.config)],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
        )
        logf.close()
        try:
            while True:
                sock.settimeout(0.05)
                try:
                    msg = sock.recv(4096)
                except socket.timeout:
                    if self.proc.poll() is not None:
                        raise RuntimeError(f"server exited with {self.proc.returncode} before READY; see {self.log}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"no READY=1 within {timeout}s; see {self.log}")
                    continue
                if b"READY=1" in msg.split(b"\n"):
                    return (time.perf_counter() - t0) * 1000.0
        finally:
            sock.close()
            sock_path.unlink(missing_ok=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("server did not stop within 30 s of SIGTERM")


def post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read())


def metrics(base: str) -> dict[str, float]:
    """The device-side counters this benchmark explains throughput with."""
    want = {
        'hailo_clip_batch_size_sum{kind="image"}': "batch_sum",
        'hailo_clip_batch_size_count{kind="image"}': "batches",
        'hailo_clip_inference_seconds_sum{kind="image"}': "device_s",
        'hailo_clip_queue_seconds_sum': "queue_s",
        'hailo_clip_queue_seconds_count': "queued_jobs",
    }
    out = dict.fromkeys(want.values(), 0.0)
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            name, _, value = line.rpartition(" ")
            # Metrics carry a model label; this benchmark runs one model, so it is dropped.
            name = re.sub(r',?model="[^"]*"', "", name).replace("{,", "{").replace("{}", "")
            if name in want:
                out[want[name]] += float(value)
    return out


def run_wrk(url: str, body_path: Path, conns: int, seconds: int, lua: Path) -> tuple[dict, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(lua), url]
    p = subprocess.run(cmd, env=dict(os.environ, BENCH_BODY=str(body_path)),
                       capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((l for l in p.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(line[len("WRK_JSON "):]), cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, default=REPO / "target/release/hailo-clip")
    ap.add_argument("--config", type=Path, default=HERE / "mock-hailo10h.yaml")
    ap.add_argument("--duration", type=int, default=10, help="seconds per load run")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--endpoints", default="classify,embed_image")
    ap.add_argument("--image", type=Path, default=IMAGE, help="JPEG sent in every request body")
    ap.add_argument("--starts", type=int, default=5, help="extra spawns for start-to-ready")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    a = ap.parse_args()

    conc = [int(c) for c in a.concurrency.split(",")]
    work = Path(tempfile.mkdtemp(prefix="hailo-clip-bench-"))
    port = free_port()
    cfg = work / "config.yaml"
    write_config(a.config, port, cfg)
    base = f"http://127.0.0.1:{port}"
    log = work / "server.log"

    b64 = base64.b64encode(a.image.read_bytes()).decode()
    bodies = {
        "classify": ("/v1/classify", {"image": b64, "labels": LABELS}),
        "embed_image": ("/v1/embed/image", {"image": b64}),
    }
    endpoints = a.endpoints.split(",")
    body_files = {}
    for name in endpoints:
        path, obj = bodies[name]
        f = work / f"{name}.json"
        f.write_bytes(json.dumps(obj).encode())
        body_files[name] = (path, f)

    result: dict = {
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": os.uname().release},
        "binary": str(a.binary),
        "image": {"file": str(a.image), "bytes": a.image.stat().st_size,
                  "body_bytes": {k: v[1].stat().st_size for k, v in body_files.items()}},
        "device_model": {"image_fixed_ms": FIXED_MS, "image_per_item_ms": PER_ITEM_MS,
                         "batch1_ms": round(DEVICE_MS_B1, 3), "batch8_capacity_rps": round(CAPACITY_B8, 2)},
        "targets": TARGETS,
        "duration_s": a.duration,
        "load_generator": "wrk -t1 (one event-loop thread), keep-alive, same 2 cores as the server",
    }

    result["loadavg_before"] = loadavg()
    if result["loadavg_before"][0] > 1.0:
        print(f"warning: 1-minute load average is {result['loadavg_before'][0]:.2f} before the run; other work "
              "on these cores skews every figure", file=sys.stderr)

    # Start-to-ready on fresh processes (page cache warm after the first).
    starts = []
    for _ in range(a.starts):
        s = Server(a.binary, cfg, work, log)
        starts.append(s.start())
        # Stopped the instant READY=1 arrives: a clean exit also proves the SIGTERM handler is
        # in place before readiness is announced.
        rc = s.stop()
        if rc != 0:
            raise RuntimeError(f"server exited {rc} on SIGTERM; see {log}")

    srv = Server(a.binary, cfg, work, log)
    starts.append(srv.start())
    result["start_to_ready_ms"] = {"runs": [round(x, 2) for x in starts],
                                   "median": round(statistics.median(starts), 2),
                                   "max": round(max(starts), 2)}
    try:
        time.sleep(1.0)
        idle = status_kb(srv.pid)
        result["rss_idle_after_start_kb"] = idle["VmRSS"]
        result["threads_idle"] = idle["Threads"]

        # Correctness first: a benchmark of error responses would be fast and meaningless.
        for name, (path, f) in body_files.items():
            code, resp = post(base + path, f.read_bytes())
            if name == "classify":
                ok = code == 200 and sorted(r["label"] for r in resp["result"]) == sorted(LABELS)
            else:
                ok = code == 200 and resp["dimension"] == 640 and len(resp["result"]) == 640
            if not ok:
                raise RuntimeError(f"{path}: unexpected answer {code} {str(resp)[:300]}")
        result["rss_after_first_requests_kb"] = status_kb(srv.pid)["VmRSS"]

        # Short warm-up so the blocking pool and allocator are in steady state for run one.
        run_wrk(base + body_files[endpoints[0]][0], body_files[endpoints[0]][1], 8, 2, HERE / "post.lua")

        runs = []
        for name in endpoints:
            path, f = body_files[name]
            for c in conc:
                m0, cpu0, t0 = metrics(base), cpu_seconds(srv.pid), time.perf_counter()
                w, wrk_cpu = run_wrk(base + path, f, c, a.duration, HERE / "post.lua")
                wall = time.perf_counter() - t0
                m1, cpu1 = metrics(base), cpu_seconds(srv.pid)
                secs = w["duration_us"] / 1e6
                n = w["requests"]
                errors = sum(w["errors"].values())
                lat = {k: v / 1000.0 for k, v in w["latency_us"].items()}
                batches = m1["batches"] - m0["batches"]
                r = {
                    "endpoint": path, "clients": c, "requests": n, "errors": w["errors"],
                    "rps": round(n / secs, 2),
                    "latency_ms": {k: round(v, 3) for k, v in lat.items()},
                    "overhead_ms": {"p50": round(lat["p50"] - DEVICE_MS_B1, 3),
                                    "p99": round(lat["p99"] - DEVICE_MS_B1, 3)},
                    "server_cpu_ms_per_req": round((cpu1 - cpu0) * 1000 / max(n, 1), 3),
                    "server_cpu_pct": round((cpu1 - cpu0) / wall * 100, 1),
                    "wrk_cpu_pct": round(wrk_cpu / wall * 100, 1),
                    "mean_batch": round((m1["batch_sum"] - m0["batch_sum"]) / batches, 2) if batches else 0,
                    "device_busy_pct": round((m1["device_s"] - m0["device_s"]) / wall * 100, 1),
                    "mean_queue_ms": round((m1["queue_s"] - m0["queue_s"]) * 1000
                                           / max(m1["queued_jobs"] - m0["queued_jobs"], 1), 3),
                }
                if errors:
                    raise RuntimeError(f"{path} at {c} clients: {w['errors']} errors")
                runs.append(r)
        result["runs"] = runs
        st = status_kb(srv.pid)
        result["rss_peak_kb"] = st["VmHWM"]
        result["threads_after_load"] = st["Threads"]
        time.sleep(1.0)
        result["rss_idle_after_load_kb"] = status_kb(srv.pid)["VmRSS"]
    finally:
        rc = srv.stop()
    result["exit_code_on_sigterm"] = rc
    result["loadavg_after"] = loadavg()
    if rc != 0:
        raise RuntimeError(f"server exited {rc} on SIGTERM; see {log}")

    verdict = evaluate(result)
    result["verdict"] = verdict
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"\nJSON: {a.out}\nserver log: {log}")
    return 1 if a.strict and not all(v["met"] for v in verdict.values()) else 0


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def evaluate(r: dict) -> dict:
    v = {}
    by = {(x["endpoint"], x["clients"]): x for x in r["runs"]}
    c64 = by.get(("/v1/classify", 64))
    c1 = by.get(("/v1/classify", 1))
    if c64:
        v["classify 64 clients >= 97% of batch-8 capacity"] = {
            "value": c64["rps"], "limit": round(TARGETS["throughput_64_min_rps"], 1), "unit": "req/s",
            "met": c64["rps"] >= TARGETS["throughput_64_min_rps"]}
    if c1:
        v["classify 1 client p50 over device time"] = {
            "value": c1["overhead_ms"]["p50"], "limit": TARGETS["overhead_p50_1_max_ms"], "unit": "ms",
            "met": c1["overhead_ms"]["p50"] <= TARGETS["overhead_p50_1_max_ms"]}
        v["classify 1 client p99 over device time"] = {
            "value": c1["overhead_ms"]["p99"], "limit": TARGETS["overhead_p99_1_max_ms"], "unit": "ms",
            "met": c1["overhead_ms"]["p99"] <= TARGETS["overhead_p99_1_max_ms"]}
    idle_mb = r["rss_idle_after_start_kb"] / 1024
    v["idle RSS after start"] = {"value": round(idle_mb, 1), "limit": TARGETS["idle_rss_max_mb"], "unit": "MiB",
                                 "met": idle_mb <= TARGETS["idle_rss_max_mb"]}
    med = r["start_to_ready_ms"]["median"]
    v["start to READY=1 (median)"] = {"value": med, "limit": TARGETS["start_to_ready_max_ms"], "unit": "ms",
                                      "met": med <= TARGETS["start_to_ready_max_ms"]}
    return v


def print_table(r: dict) -> None:
    d = r["device_model"]
    print(f"\nhailo-clip request overhead | mock device {d['image_fixed_ms']} + {d['image_per_item_ms']}*n ms "
          f"(batch 1 {d['batch1_ms']} ms, batch-8 capacity {d['batch8_capacity_rps']} img/s) | "
          f"{r['machine']['cpus']} CPUs, {r['machine']['cpu']} | {r['duration_s']:g} s per run, wrk -t1")
    hdr = ("endpoint", "clients", "req/s", "min ms", "p50 ms", "p99 ms", "max ms", "p50-dev", "p99-dev",
           "batch", "dev busy%", "srv cpu%", "cpu ms/req", "wrk cpu%")
    rows = [hdr]
    for x in r["runs"]:
        L = x["latency_ms"]
        rows.append((x["endpoint"], str(x["clients"]), f"{x['rps']:.1f}", f"{L['min']:.2f}", f"{L['p50']:.2f}", f"{L['p99']:.2f}",
                     f"{L['max']:.2f}", f"{x['overhead_ms']['p50']:+.2f}", f"{x['overhead_ms']['p99']:+.2f}",
                     f"{x['mean_batch']:.2f}", f"{x['device_busy_pct']:.1f}", f"{x['server_cpu_pct']:.1f}",
                     f"{x['server_cpu_ms_per_req']:.2f}", f"{x['wrk_cpu_pct']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(hdr))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    s = r["start_to_ready_ms"]
    print(f"\nstart to READY=1: median {s['median']:.1f} ms, max {s['max']:.1f} ms over {len(s['runs'])} spawns")
    print(f"RSS: idle after start {r['rss_idle_after_start_kb'] / 1024:.1f} MiB, after first requests "
          f"{r['rss_after_first_requests_kb'] / 1024:.1f} MiB, peak under load (VmHWM) {r['rss_peak_kb'] / 1024:.1f} MiB, "
          f"idle after load {r['rss_idle_after_load_kb'] / 1024:.1f} MiB; threads {r['threads_idle']} idle, "
          f"{r['threads_after_load']} after load")
    print(f"load average (1/5/15 min) before {r['loadavg_before']}, after {r['loadavg_after']}")
    print("\ntargets:")
    for k, v in r["verdict"].items():
        op = ">=" if "capacity" in k else "<="
        print(f"  {'MET   ' if v['met'] else 'MISSED'} {k}: {v['value']} {v['unit']} ({op} {v['limit']})")


if __name__ == "__main__":
    sys.exit(main())
