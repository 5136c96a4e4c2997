#!/usr/bin/env bash
# 12 MP camera JPEGs: decode speed against Pillow, quality of the DCT-scaled decode, and the
# service under 64 clients (throughput, peak and returned memory). See docs/benchmark.md.
#
#   bash bench/jpeg.sh                         # everything, about 4 minutes after the build
#   BASE_BIN=path bash bench/jpeg.sh           # load runs also for another binary, side by side
#   JPEG_PARTS=single,quality,load bash bench/jpeg.sh
#   JPEG_DURATION=10 JPEG_CLIENTS=64 bash bench/jpeg.sh
#
# Test photos: bench/jpeg/make_photos.py (scikit-image samples upscaled to 4000x3000, q90, plain
# and noisy) into .cache/jpeg-photos; Pillow and scikit-image in .cache/bench-venv from
# bench/jpeg/requirements.txt. wrk from apt if missing (as bench/service.sh). ONNX Runtime for the
# quality part from scripts/install-onnxruntime.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

parts=",${JPEG_PARTS:-single,quality,load},"
venv=.cache/bench-venv
photos=.cache/jpeg-photos
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q -r bench/jpeg/requirements.txt
[[ -f $photos/chelsea-noisy.jpg ]] || "$venv/bin/python" bench/jpeg/make_photos.py "$photos"
command -v wrk >/dev/null || {
    sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq wrk
}

bash scripts/ensure-nasm.sh release
cargo build --release --locked --quiet --bin hailo-clip
cargo build --release --locked --quiet -p hailo-clip-clip --example jpeg_bench
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
smooth=$photos/chelsea.jpg
noisy=$photos/chelsea-noisy.jpg

if [[ $parts == *,single,* ]]; then
    echo "== one image at a time: base64 -> 288x288 RGB (median ms of 15; two interleaved rounds)"
    for round in 1 2; do
        "$target/release/examples/jpeg_bench" --size 288 "$smooth" "$noisy"
        "$venv/bin/python" bench/jpeg/pillow_bench.py --size 288 "$smooth" "$noisy"
    done | python3 -c '
import collections, json, sys
rows = collections.defaultdict(list)
for line in sys.stdin:
    r = json.loads(line); rows[(r["file"], r["path"])].append(r["ms_median"])
files = sorted({f for f, _ in rows})
for f in files:
    best = {p: min(v) for (g, p), v in rows.items() if g == f}
    d = best["pillow_draft"]
    print(f"{f}: " + ", ".join(f"{p} {ms:.2f} ms ({ms / d:.2f}x draft)" for p, ms in sorted(best.items())))
'
fi

if [[ $parts == *,quality,* ]]; then
    echo "== scaled vs full decode: embedding cosine on tests/fixtures/tiny-rn, pixel diff at 288"
    ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$(bash scripts/install-onnxruntime.sh | tail -n 1)}" \
        cargo run --release --locked --quiet --example jpeg_quality -- tests/fixtures/tiny-rn \
        "$photos"/*.jpg tests/fixtures/images/*.jpg
fi

if [[ $parts == *,load,* ]]; then
    echo "== ${JPEG_CLIENTS:-64} clients posting 12 MP JPEGs, mock Hailo-10H timing"
    bins=(--binary "new=$target/release/hailo-clip")
    [[ -n ${BASE_BIN:-} ]] && bins+=(--binary "base=$BASE_BIN")
    python3 bench/jpeg/load.py "${bins[@]}" --clients "${JPEG_CLIENTS:-64}" \
        --duration "${JPEG_DURATION:-10}" --out bench/results/jpeg-load.json "$smooth" "$noisy"
fi
