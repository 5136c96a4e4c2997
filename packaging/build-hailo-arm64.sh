#!/usr/bin/env bash
# Usage: packaging/build-hailo-arm64.sh [--profile release|dev] [--out DIR] HAILORT_SRC
#
# Cross-builds the arm64 `hailo` flavour of hailo-clip on an x86 Debian machine, without HailoRT's
# library: it links against a *link stub* libhailort made here.
#   HAILORT_SRC  a HailoRT source tree (hailort/libhailort/include/hailo/, e.g. `git archive v5.1.1`
#                of hailo-ai/hailort) or an install prefix (include/hailo/); only its headers are used.
# Steps:
#   1. compile hailort-sys/shim/hrt_shim.cpp for aarch64 (-O0 and -O3) and list what it imports
#      (aarch64-linux-gnu-nm -u --format=posix); the symbols that the cross toolchain's libc, libm,
#      libgcc and libstdc++ do not define are HailoRT's: DIR/shim-imports.txt
#   2. generate a C file that defines exactly those symbols through asm labels
#      (tools/hailort-symbols.py stub: no HailoRT code; C functions returning hailo_status return
#      HAILO_NOT_IMPLEMENTED, pointer-returning ones NULL, the C++ ones print their name and abort)
#      and build it as DIR/stub/lib/libhailort.so.VERSION with SONAME libhailort.so.VERSION, the
#      SONAME CMake gives the real library (VERSION set, SOVERSION not: libhailort/src/CMakeLists.txt)
#   3. cargo build --target aarch64-unknown-linux-gnu --features hailo --bin hailo-clip with
#      HAILORT_INCLUDE_DIR=<headers>, HAILORT_LIB_DIR=DIR/stub/lib
#   4. print the binary's `readelf -d` NEEDED entries; the last line is the binary's path
# VERSION is read from HAILORT_SRC/hailort/libhailort/CMakeLists.txt, else $HAILORT_VERSION (default
# 5.1.1). DIR defaults to $CARGO_TARGET_DIR/hailo-arm64 (target/hailo-arm64). The stub is for linking
# and load tests only: never install it. tests/hailo/check-arm64-link.sh checks the result.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
profile=release
out=
src=
while [ $# -gt 0 ]; do
  case $1 in
  --profile) profile=$2 && shift 2 ;;
  --out) out=$2 && shift 2 ;;
  -*) echo "unknown argument $1 (see the usage at the top of $0)" >&2 && exit 2 ;;
  *) src=$1 && shift ;;
  esac
done
[ -n "$src" ] || { echo "usage: $0 [--profile release|dev] [--out DIR] HAILORT_SRC" >&2; exit 2; }
triple=aarch64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-$repo/target}
out=${out:-$target_dir/hailo-arm64}

inc=
for cand in "$src/hailort/libhailort/include" "$src/include" "$src"; do
  [ -f "$cand/hailo/infer_model.hpp" ] && inc=$(cd "$cand" && pwd) && break
done
[ -n "$inc" ] || { echo "no hailo/infer_model.hpp under $src" >&2; exit 1; }
version=${HAILORT_VERSION:-5.1.1}
cml=$inc/../CMakeLists.txt
if [ -f "$cml" ]; then
  v=$(sed -n 's/.*set(HAILORT_MAJOR_VERSION *\([0-9]*\)).*/\1/p; s/.*set(HAILORT_MINOR_VERSION *\([0-9]*\)).*/\1/p; s/.*set(HAILORT_REVISION_VERSION *\([0-9]*\)).*/\1/p' "$cml" | paste -sd.)
  [ -n "$v" ] && version=$v
fi
soname=libhailort.so.$version

apt_need() { # apt_need CMD PACKAGE...
  command -v "$1" >/dev/null && return 0
  shift
  echo "installing $* from apt" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
apt_need aarch64-linux-gnu-g++ gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
rustup target list --installed 2>/dev/null | grep -qx "$triple" || rustup target add "$triple" >&2
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++

echo "HailoRT $version headers: $inc" >&2
mkdir -p "$out/stub/lib"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. What the shim imports, at both ends of the optimisation range (inlining can change it).
shim=$repo/hailort-sys/shim
for o in 0 3; do
  aarch64-linux-gnu-g++ -std=c++17 -O$o -fPIC -I"$inc" -I"$shim" -c "$shim/hrt_shim.cpp" -o "$work/shim-O$o.o"
done
aarch64-linux-gnu-nm -u --format=posix "$work"/shim-O*.o | awk 'NF >= 2 && $2 == "U" {print $1}' | sort -u >"$work/undefined"
for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libstdc++.so.6 ld-linux-aarch64.so.1; do
  aarch64-linux-gnu-nm -D --defined-only --format=posix "$(aarch64-linux-gnu-gcc -print-file-name=$lib)" | awk '{print $1}'
done | sed 's/@.*//' >"$work/runtime"
# libgcc.a: the outline atomics (__aarch64_ldadd4_acq_rel, ...) are linked statically.
aarch64-linux-gnu-nm --defined-only --format=posix "$(aarch64-linux-gnu-gcc -print-libgcc-file-name)" 2>/dev/null |
  awk 'NF >= 2 && $2 ~ /^[TWRDB]$/ {print $1}' >>"$work/runtime"
sort -u "$work/runtime" -o "$work/runtime"
comm -23 "$work/undefined" "$work/runtime" >"$out/shim-imports.txt"
foreign=$(c++filt <"$out/shim-imports.txt" | grep -Ev '^(hailort::|hailo_)' || true)
if [ -n "$foreign" ]; then
  echo "the shim imports symbols that are neither HailoRT's nor the C/C++ runtime's:" >&2
  echo "$foreign" >&2
  exit 1
fi
echo "the shim imports $(wc -l <"$out/shim-imports.txt") HailoRT symbols ($out/shim-imports.txt)" >&2

# 2. The link stub.
python3 "$repo/tools/hailort-symbols.py" stub --include "$inc" "$out/shim-imports.txt" >"$out/stub/stub.c"
rm -f "$out/stub/lib/"libhailort.so*
aarch64-linux-gnu-gcc -shared -fPIC -O2 -fvisibility=hidden -Wl,-soname,"$soname" -Wl,-z,defs \
  -o "$out/stub/lib/$soname" "$out/stub/stub.c"
ln -s "$soname" "$out/stub/lib/libhailort.so"
echo "link stub: $out/stub/lib/$soname (SONAME $soname)" >&2

# 3. The hailo flavour for aarch64.
t=$SECONDS
(cd "$repo" && HAILORT_INCLUDE_DIR=$inc HAILORT_LIB_DIR=$out/stub/lib \
  cargo build --locked --profile "$profile" --target "$triple" --bin hailo-clip --features hailo >&2)
dir=$profile
[ "$profile" = dev ] && dir=debug
bin=$target_dir/$triple/$dir/hailo-clip
echo "cargo build --profile $profile --target $triple --features hailo: $((SECONDS - t)) s" >&2

# 4.
readelf -d "$bin" | grep -E '\((NEEDED|RUNPATH|RPATH)\)' >&2
echo "$bin"
