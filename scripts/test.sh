#!/usr/bin/env bash
# The project's test command (README quick start; CI runs it through .ci/run).
# Installs what the tests need from the project's own files, then runs every suite that can run
# on a machine without a Hailo device: Rust unit + HTTP integration tests (mock and ONNX backends),
# lint, and the Nix/systemd checks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install a Rust toolchain (rustup) first" >&2
  exit 1
fi

if [ -x scripts/install-onnxruntime.sh ] || [ -f scripts/install-onnxruntime.sh ]; then
  step "ONNX Runtime shared library (from the PyPI wheel)"
  ORT_DYLIB_PATH="$(bash scripts/install-onnxruntime.sh | tail -n 1)"
  export ORT_DYLIB_PATH
  echo "ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
fi

step "layers import only downward (tests/layers/check.py)"
python3 tests/layers/check.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (deny warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "abuse suite: hostile clients against the real server (tests/abuse/run.py)"
if [ ! -x .cache/abuse-venv/bin/python ] || ! .cache/abuse-venv/bin/python -c 'import PIL' 2>/dev/null; then
  python3 -m venv .cache/abuse-venv
  .cache/abuse-venv/bin/pip install -q -r tests/abuse/requirements.txt
fi
.cache/abuse-venv/bin/python tests/abuse/run.py target/debug/hailo-clip
step "contract tests against the live mock server (tests/contract/run.sh)"
cargo build --locked --quiet
bash tests/contract/run.sh target/debug/hailo-clip

step "Nix module, flake and systemd unit checks"
bash tests/nix/check.sh
if [ -f tests/nix/hailo-check.sh ]; then
  bash tests/nix/hailo-check.sh
fi

if [ "${HAILO_CLIP_FUZZ_SECS:-0}" != 0 ]; then
  step "fuzz targets, ${HAILO_CLIP_FUZZ_SECS} s each (docs/fuzzing.md)"
  bash fuzz/run.sh "$HAILO_CLIP_FUZZ_SECS"
fi

if [ "${HAILO_CLIP_VM_TEST:-0}" = 1 ] && [ -f tests/vm/run.sh ]; then
  step "systemd runtime test in a Debian guest (qemu, tcg)"
  bash tests/vm/run.sh
fi
