#!/usr/bin/env bash
# Installs libonnxruntime.so for the `onnx` backend from the PyPI `onnxruntime` wheel (the
# official CPU build; no Python is needed at run time, only to fetch it) and prints its path.
#
#   export ORT_DYLIB_PATH="$(scripts/install-onnxruntime.sh)"
#
# Idempotent: a second run finds the library and only prints the path. Messages go to stderr,
# so stdout is the path alone.
#
# Environment:
#   ONNXRUNTIME_VERSION  wheel version (default: the pinned one below, what the tests ran with)
#   ORT_INSTALL_DIR      where to put it (default: <repo>/.cache/onnxruntime/<version>)
#   PYTHON               interpreter whose pip fetches the wheel (default: python3)
set -euo pipefail

version="${ONNXRUNTIME_VERSION:-1.32.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${ORT_INSTALL_DIR:-$repo/.cache/onnxruntime/$version}"
lib="$dest/libonnxruntime.so.$version"
python="${PYTHON:-python3}"

log() { echo "install-onnxruntime: $*" >&2; }

if [[ -s "$lib" ]]; then
  log "already installed: $lib"
  echo "$lib"
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  log "needs $python (with pip) to fetch the onnxruntime wheel from PyPI"
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing python3-pip with apt-get"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2
    python=python3
  else
    exit 1
  fi
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing python3-pip with apt-get"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >&2
  else
    log "$python has no pip; install pip (e.g. apt-get install python3-pip) and re-run"
    exit 1
  fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "downloading onnxruntime==$version wheel from PyPI"
# --no-deps: only the shared library is wanted, not numpy/protobuf.
"$python" -m pip download --quiet --no-deps --only-binary=:all: \
  --dest "$work" "onnxruntime==$version" >&2
wheel="$(ls "$work"/onnxruntime-"$version"-*.whl | head -n1)"

mkdir -p "$dest"
# The .so is the whole runtime (CPU provider built in); extracted with Python so unzip is not needed.
"$python" - "$wheel" "$dest" "$version" <<'EOF'
import sys, zipfile, os
wheel, dest, version = sys.argv[1:4]
want = f"onnxruntime/capi/libonnxruntime.so.{version}"
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    if want not in names:
        sys.exit(f"{wheel} has no {want}; it holds: " + ", ".join(n for n in names if "libonnxruntime" in n))
    tmp = os.path.join(dest, f".libonnxruntime.so.{version}.part")
    with z.open(want) as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    os.chmod(tmp, 0o755)
    os.replace(tmp, os.path.join(dest, f"libonnxruntime.so.{version}"))
EOF
# Keep the cache out of git without touching the repository's .gitignore.
if [[ -z "${ORT_INSTALL_DIR:-}" && ! -e "$repo/.cache/.gitignore" ]]; then
  echo '*' >"$repo/.cache/.gitignore"
fi
log "installed $lib ($(du -h "$lib" | cut -f1))"
echo "$lib"
