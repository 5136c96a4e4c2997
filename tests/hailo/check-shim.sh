#!/usr/bin/env bash
# Compiles hailort-sys's C++ shim against real HailoRT 5.x headers, without the library or a device.
#   tests/hailo/check-shim.sh [HAILORT_SRC_DIR]
# HAILORT_SRC_DIR is a HailoRT source tree (it has hailort/libhailort/include/hailo/) or an install
# prefix (include/hailo/). Without it, $HAILORT_INCLUDE_DIR, then /usr/include are tried; with no
# headers anywhere the check is SKIPPED (exit 0) and says so.
# Steps: g++ -fsyntax-only, then a real object file (-c), both -std=c++17 -Wall -Wextra -Werror.
# Last line: "N passed, N failed, N skipped"; exit status non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
shim="$repo/hailort-sys/shim/hrt_shim.cpp"
cxx=${CXX:-g++}

passed=0 failed=0 skipped=0
finish() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit
}

inc=""
for cand in ${1:+"$1/hailort/libhailort/include" "$1/include" "$1"} ${HAILORT_INCLUDE_DIR:+"$HAILORT_INCLUDE_DIR"} /usr/include; do
  if [ -f "$cand/hailo/infer_model.hpp" ]; then
    inc=$cand
    break
  fi
done
if [ -z "$inc" ]; then
  if [ -n "${1:-}" ]; then
    echo "FAIL no hailo/infer_model.hpp under $1"
    failed=1
  else
    echo "SKIP no HailoRT headers (pass a HailoRT source tree, or set HAILORT_INCLUDE_DIR)"
    skipped=1
  fi
  finish
fi
if ! command -v "$cxx" >/dev/null; then
  echo "FAIL $cxx not found (apt-get install g++)"
  failed=1
  finish
fi

# The version the headers describe, from the source tree's CMakeLists when there is one.
ver=unknown
cml="$inc/../CMakeLists.txt"
if [ -f "$cml" ]; then
  ver=$(sed -n 's/.*set(HAILORT_MAJOR_VERSION *\([0-9]*\)).*/\1/p; s/.*set(HAILORT_MINOR_VERSION *\([0-9]*\)).*/\1/p; s/.*set(HAILORT_REVISION_VERSION *\([0-9]*\)).*/\1/p' "$cml" | paste -sd.)
  [ -n "$ver" ] || ver=unknown
fi
echo "headers: $inc (HailoRT $ver)"

flags=(-std=c++17 -Wall -Wextra -Werror -I"$inc" -I"$repo/hailort-sys/shim")
if out=$("$cxx" "${flags[@]}" -fsyntax-only "$shim" 2>&1); then
  echo "PASS syntax-only compile against HailoRT $ver"
  passed=$((passed + 1))
else
  echo "FAIL syntax-only compile against HailoRT $ver:"
  echo "$out" | head -40
  failed=$((failed + 1))
  finish
fi

obj=$(mktemp --suffix=.o)
trap 'rm -f "$obj"' EXIT
if out=$("$cxx" "${flags[@]}" -O2 -fPIC -c "$shim" -o "$obj" 2>&1); then
  echo "PASS object file ($(wc -c <"$obj") bytes)"
  passed=$((passed + 1))
else
  echo "FAIL object file:"
  echo "$out" | head -40
  failed=$((failed + 1))
  finish
fi

# Every function the Rust side declares must be defined by the object, with C linkage.
missing=""
syms=$(sed -n 's/.*fn \(hrt_[a-z_]*\)(.*/\1/p' "$repo/hailort-sys/src/ffi.rs" 2>/dev/null | sort -u)
[ -n "$syms" ] || missing=" (no hrt_* declarations found in hailort-sys/src/ffi.rs)"
# One nm listing: `nm | grep -q` under pipefail fails whenever grep stops reading early.
defined=$(nm --defined-only "$obj")
for sym in $syms; do
  grep -q " T $sym\$" <<<"$defined" || missing="$missing $sym"
done
if [ -z "$missing" ]; then
  echo "PASS all $(echo "$syms" | wc -l) hrt_* functions declared in hailort-sys/src/ffi.rs are defined with C linkage"
  passed=$((passed + 1))
else
  echo "FAIL not defined by the shim:$missing"
  failed=$((failed + 1))
fi
finish
