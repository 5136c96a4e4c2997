#!/usr/bin/env bash
# The `onnx` backend (Rust, ort) against Python onnxruntime on the same ONNX files, same thread
# count, one after the other on an otherwise idle machine; prints both JSON results and a table.
#
#   bench/onnx.sh [MODEL_DIR] [THREADS]
#
# MODEL_DIR holds image.onnx, text.onnx and model.json (tools/export-onnx.py); default: the tiny
# test fixture. THREADS defaults to all online CPUs (both runtimes get the same number).
# Environment: PYTHON (an interpreter with onnxruntime and numpy; default python3), RUNS (10),
# WARMUP (2), ROUNDS (2),
# ORT_DYLIB_PATH (default: scripts/install-onnxruntime.sh installs and supplies it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model_dir="${1:-$repo/tests/fixtures/tiny-rn}"
threads="${2:-$(nproc)}"
runs="${RUNS:-10}"
warmup="${WARMUP:-2}"
rounds="${ROUNDS:-2}"
python="${PYTHON:-python3}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if ! "$python" -c 'import onnxruntime, numpy' 2>/dev/null; then
  echo "bench/onnx.sh: $python lacks onnxruntime/numpy; set PYTHON to a venv made with" >&2
  echo "  python3 -m venv VENV && VENV/bin/pip install onnxruntime==1.32.0 numpy" >&2
  exit 1
fi
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$("$repo/scripts/install-onnxruntime.sh")}"

(cd "$repo" && cargo build --release --quiet --example onnx_bench)
bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples/onnx_bench"

echo "model $model_dir, $threads threads, $runs runs after $warmup warm-up, $rounds round(s)" >&2
# Alternating rounds, so load from anything else on the machine hits both runtimes alike; the
# table takes each measure's best median over the rounds.
for round in $(seq 1 "$rounds"); do
  echo "round $round: rust (ort, $ORT_DYLIB_PATH)..." >&2
  "$bin" "$model_dir" --threads "$threads" --runs "$runs" --warmup "$warmup" >"$out/rust.$round.json"
  echo "round $round: python ($("$python" -c 'import onnxruntime; print(onnxruntime.__version__)'))..." >&2
  "$python" "$repo/bench/onnx_python.py" "$model_dir" --threads "$threads" --runs "$runs" --warmup "$warmup" \
    >"$out/python.$round.json"
done

cat "$out"/rust.*.json "$out"/python.*.json
"$python" - "$out" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
def load(kind):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(d, f"{kind}.*.json")))]
def best(results):
    """Each measure's best (lowest) value over the rounds."""
    out = json.loads(json.dumps(results[0]))
    for r in results[1:]:
        for key in ("image", "text"):
            for b, m in r[key].items():
                for f in ("median_ms", "per_item_ms"):
                    out[key][b][f] = min(out[key][b][f], m[f])
        out["load_ms"]["total"] = min(out["load_ms"]["total"], r["load_ms"]["total"])
        out["rss_bytes"]["peak"] = max(out["rss_bytes"]["peak"], r["rss_bytes"]["peak"])
    return out
rs, ps = load("rust"), load("python")
r, p = best(rs), best(ps)
print()
print(f"model {r['model']} ({r['image_size']}px, {r['embedding_dimension']}-d), threads {r['threads']}, "
      f"onnxruntime {r['onnxruntime_version']} (rust) / {p['onnxruntime_version']} (python), "
      f"best median of {len(rs)} round(s) x {r['image'][next(iter(r['image']))]['runs']} runs; cpu: {p['cpu']}")
print(f"{'measure':<28}{'rust ort':>12}{'python ort':>12}{'rust/python':>13}")
def row(name, a, b, unit="ms"):
    ratio = f"{a / b:.3f}" if b else "-"
    print(f"{name:<28}{a:>10.2f}{unit:>2}{b:>10.2f}{unit:>2}{ratio:>13}")
for key in ("image", "text"):
    for b in r[key]:
        if b in p[key]:
            row(f"{key} {b} per batch", r[key][b]["median_ms"], p[key][b]["median_ms"])
            row(f"{key} {b} per item", r[key][b]["per_item_ms"], p[key][b]["per_item_ms"])
row("load (both sessions)", r["load_ms"]["total"], p["load_ms"]["total"])
rr, pr = r["rss_bytes"]["peak"], p["rss_bytes"]["peak"]
print(f"{'peak RSS (process)':<28}{rr / 2**20:>10.0f}MB{pr / 2**20:>10.0f}MB{rr / pr:>13.3f}")
PY
