#!/usr/bin/env bash
# The `onnx` backend (Rust, ort) against Python onnxruntime on the same ONNX files, same thread
# count, one after the other on an otherwise idle machine; prints both JSON results and a table.
#
#   bench/onnx.sh [MODEL_DIR] [THREADS]
#
# MODEL_DIR holds image.onnx, text.onnx and model.json (tools/export-onnx.py); default: the tiny
# test fixture. THREADS defaults to all online CPUs (both runtimes get the same number).
# Environment: PYTHON (an interpreter with onnxruntime and numpy; default python3), RUNS (5),
# WARMUP (1), ROUNDS (4),
# ORT_DYLIB_PATH (default: scripts/install-onnxruntime.sh installs and supplies it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model_dir="${1:-$repo/tests/fixtures/tiny-rn}"
threads="${2:-$(nproc)}"
runs="${RUNS:-5}"
warmup="${WARMUP:-1}"
rounds="${ROUNDS:-4}"
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
# Alternating rounds, so load from anything else on the machine hits both runtimes alike. The
# table gives, per measure, the fastest run over all rounds (the least disturbed) and the median
# of the rounds' medians.
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
def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
rs, ps = load("rust"), load("python")
r, p = rs[0], ps[0]
def stat(results, key, b, f):
    vals = [x[key][b][f] for x in results]
    return min(vals) if f == "min_ms" else median(vals)
print()
print(f"model {r['model']} ({r['image_size']}px, {r['embedding_dimension']}-d), threads {r['threads']}, "
      f"onnxruntime {r['onnxruntime_version']} (rust) / {p['onnxruntime_version']} (python), "
      f"{len(rs)} alternating round(s) x {r['image'][next(iter(r['image']))]['runs']} runs; cpu: {p['cpu']}")
print(f"{'ms per item':<16}{'rust min':>10}{'py min':>10}{'ratio':>7}{'rust med':>10}{'py med':>10}{'ratio':>7}")
for key in ("image", "text"):
    for b in r[key]:
        if b not in p[key]:
            continue
        n = r[key][b]["batch"]
        rm, pm = stat(rs, key, b, "min_ms") / n, stat(ps, key, b, "min_ms") / n
        rd, pd = stat(rs, key, b, "median_ms") / n, stat(ps, key, b, "median_ms") / n
        print(f"{key + ' ' + b:<16}{rm:>10.2f}{pm:>10.2f}{rm / pm:>7.3f}{rd:>10.2f}{pd:>10.2f}{rd / pd:>7.3f}")
rl = median([x["load_ms"]["total"] for x in rs]); pl = median([x["load_ms"]["total"] for x in ps])
print(f"{'load ms':<16}{'':>10}{'':>10}{'':>7}{rl:>10.0f}{pl:>10.0f}{rl / pl:>7.3f}   (median over rounds, both sessions)")
rr = max(x["rss_bytes"]["peak"] for x in rs); pr = max(x["rss_bytes"]["peak"] for x in ps)
print(f"{'peak RSS MB':<16}{'':>10}{'':>10}{'':>7}{rr / 2**20:>10.0f}{pr / 2**20:>10.0f}{rr / pr:>7.3f}   (max over rounds, whole process)")
PY
