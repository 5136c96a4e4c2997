#!/usr/bin/env python3
"""Python onnxruntime baseline for the CLIP ONNX pair written by tools/export-onnx.py.

Measures, on DIR/image.onnx and DIR/text.onnx (shapes from DIR/model.json):
  load time of each session, model inference latency (median/min/p90/max of --runs after
  --warmup runs) for image batches 1 and 8 and text batches 1 and 16, and peak RSS.
Inference only: decoding, resizing and tokenising are not timed, so the numbers compare
directly with the Rust service's ONNX backend run on the same files.

Needs only onnxruntime and numpy. Prints one JSON object on stdout.

  python3 bench/onnx_python.py /work/scratch/models/rn50x4-random --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

# "a photo of a cat." tokenised by open_clip (see tests/fixtures/tokenizer_parity.json). The text
# encoder always runs all 77 positions, so latency does not depend on which prompt is used.
PROMPT_IDS = [49406, 320, 1125, 539, 320, 2368, 269, 49407]


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def session(path: Path, threads: int):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t = time.perf_counter()
    s = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    return s, (time.perf_counter() - t) * 1000.0


def time_runs(fn, warmup: int, runs: int, batch: int) -> dict:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000.0)
    ms.sort()
    med = statistics.median(ms)
    return {
        "batch": batch,
        "runs": runs,
        "median_ms": round(med, 3),
        "per_item_ms": round(med / batch, 3),
        "min_ms": round(ms[0], 3),
        "p90_ms": round(ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))], 3),
        "max_ms": round(ms[-1], 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="onnxruntime intra-op threads")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--image-batches", default="1,8")
    ap.add_argument("--text-batches", default="1,16")
    args = ap.parse_args(argv)

    meta = json.loads((args.model_dir / "model.json").read_text())
    size, ctx = int(meta["image_size"]), int(meta["context_length"])
    rss_start = rss_bytes()

    img_sess, img_load = session(args.model_dir / meta["image"]["file"], args.threads)
    txt_sess, txt_load = session(args.model_dir / meta["text"]["file"], args.threads)
    rss_loaded = rss_bytes()

    rng = np.random.default_rng(0)
    result = {
        "runtime": "python-onnxruntime",
        "onnxruntime_version": ort.__version__,
        "model_dir": str(args.model_dir),
        "model": meta.get("name"),
        "image_size": size,
        "embedding_dimension": meta.get("embedding_dimension"),
        "threads": args.threads,
        "warmup": args.warmup,
        "cpu": cpu_model(),
        "cpus_online": os.cpu_count(),
        "load_ms": {"image": round(img_load, 1), "text": round(txt_load, 1), "total": round(img_load + txt_load, 1)},
        "image": {},
        "text": {},
    }
    for b in [int(x) for x in args.image_batches.split(",") if x]:
        px = rng.standard_normal((b, 3, size, size)).astype(np.float32)
        feed = {meta["image"]["input"]: px}
        result["image"][f"b{b}"] = time_runs(lambda: img_sess.run(None, feed), args.warmup, args.runs, b)
    for b in [int(x) for x in args.text_batches.split(",") if x]:
        ids = np.zeros((b, ctx), dtype=np.int64)
        ids[:, : len(PROMPT_IDS)] = PROMPT_IDS
        feed = {meta["text"]["input"]: ids}
        result["text"][f"b{b}"] = time_runs(lambda: txt_sess.run(None, feed), args.warmup, args.runs, b)

    result["rss_bytes"] = {"start": rss_start, "after_load": rss_loaded, "peak": peak_rss_bytes()}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
