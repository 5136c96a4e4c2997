#!/usr/bin/env bash
# The arm64 `hailo` build links, and links only what libhailort of the pinned version exports.
#   tests/hailo/check-arm64-link.sh [HAILORT_SRC [REAL_LIBHAILORT]]
# HAILORT_SRC (or $HAILORT_SRC_DIR): a HailoRT source tree of the pinned version, e.g.
#   git -C <hailo-ai/hailort clone> archive v5.1.1 | tar -x -C /tmp/hailort-5.1.1
# (an install prefix with include/hailo/ works too; then the library-source step is SKIPPED).
# Without one the whole check is SKIPPED (exit 0): CI has no HailoRT source.
# REAL_LIBHAILORT: the real library, e.g. /usr/lib/libhailort.so.5.1.1 copied from a Pi with
# h10-hailort installed; without it that step is SKIPPED.
# Steps:
#   build  packaging/build-hailo-arm64.sh: link stub libhailort + cross build with --features hailo
#   (a)    readelf -d: NEEDED has libhailort.so.VERSION, everything else is libc6/libgcc-s1/libstdc++6
#   (b)    every undefined dynamic symbol of the binary (aarch64-linux-gnu-nm -D --undefined-only)
#          is defined by the C/C++ runtime or by the stub, whose exports are exactly the shim's
#          HailoRT imports; those HailoRT imports are
#            - declared with default visibility (HAILORTAPI) in the headers, as the compiler sees
#              it: the shim compiled under `#pragma GCC visibility push(hidden)` references them
#              DEFAULT (a control build with HAILORTAPI removed from class VDevice must turn
#              VDevice::create HIDDEN), and
#            - found by tools/hailort-symbols.py prove: a declaration with HAILORTAPI on it or its
#              class in include/hailo/, an out-of-line definition in hailort/libhailort/src
#   (c)    with REAL_LIBHAILORT: its SONAME, and every HailoRT import is in its
#          `nm -D --defined-only`
#   run    under qemu-aarch64 (qemu-user) with LD_BIND_NOW=1, so every import must resolve at load
#          time: `hailo-clip --version`; and a C caller gets HAILO_NOT_IMPLEMENTED from the stub
# Environment: HAILO_CLIP_ARM64_PROFILE (cargo profile, default release).
# Last line: "N passed, N failed, N skipped"; exit status non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=${1:-${HAILORT_SRC_DIR:-}}
real=${2:-}
profile=${HAILO_CLIP_ARM64_PROFILE:-release}
sysroot=/usr/aarch64-linux-gnu
passed=0 failed=0 skipped=0
pass() { echo "PASS $*" && passed=$((passed + 1)); }
fail() { echo "FAIL $*" && failed=$((failed + 1)); }
skip() { echo "SKIP $*" && skipped=$((skipped + 1)); }
finish() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit
}
if [ -z "$src" ]; then
  skip "no HailoRT source tree (pass one, or set HAILORT_SRC_DIR; see the top of $0)"
  finish
fi
inc=
for cand in "$src/hailort/libhailort/include" "$src/include" "$src"; do
  [ -f "$cand/hailo/infer_model.hpp" ] && inc=$(cd "$cand" && pwd) && break
done
if [ -z "$inc" ]; then
  fail "no hailo/infer_model.hpp under $src"
  finish
fi
libsrc=
[ -d "$inc/../src" ] && libsrc=$(cd "$inc/../src" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
out=${CARGO_TARGET_DIR:-$repo/target}/hailo-arm64

# build
t=$SECONDS
if bin=$(bash "$repo/packaging/build-hailo-arm64.sh" --profile "$profile" --out "$out" "$src" 2>"$scratch/build.log" | tail -n 1) && [ -x "$bin" ]; then
  grep -E '^(HailoRT|the shim|link stub|cargo build)' "$scratch/build.log" | sed 's/^/  /'
  pass "build-hailo-arm64.sh --profile $profile: $(basename "$bin") $(($(stat -c %s "$bin") / 1024 / 1024)) MiB, $((SECONDS - t)) s"
else
  tail -n 30 "$scratch/build.log"
  fail "build-hailo-arm64.sh"
  finish
fi
stub=$(ls "$out"/stub/lib/libhailort.so.*.*)
soname=$(basename "$stub")

# (a)
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
readelf -d "$bin" | grep -E '\((NEEDED|RUNPATH|RPATH)\)' | sed 's/^/  /'
unknown=$(for lib in $needed; do case $lib in "$soname" | libstdc++.so.6 | libc.so.6 | libm.so.6 | libgcc_s.so.1 | ld-linux-aarch64.so.1) ;; *) echo "$lib" ;; esac; done)
stub_soname=$(readelf -d "$stub" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
if [ "$machine" = AArch64 ] && grep -qx "$soname" <<<"$needed" && [ -z "$unknown" ] && [ "$stub_soname" = "$soname" ]; then
  pass "(a) $machine binary; NEEDED: $(echo $needed) (stub SONAME $stub_soname)"
else
  fail "(a) $machine binary; NEEDED: $(echo $needed); unexpected: ${unknown:-none}; stub SONAME $stub_soname"
fi

# (b)
# Weak undefined references (w: __gmon_start__, _ITM_*TMCloneTable from the C start files) may stay
# unresolved; every strong one (U) must be defined by a NEEDED library.
aarch64-linux-gnu-nm -D --undefined-only --format=posix "$bin" >"$scratch/undefined"
awk '$2 == "U" {print $1}' "$scratch/undefined" | sed 's/@.*//' | sort -u >"$scratch/imports"
weak=$(awk '$2 != "U" {print $1}' "$scratch/undefined" | sed 's/@.*//' | sort -u | paste -sd' ')
aarch64-linux-gnu-nm -D --defined-only --format=posix "$stub" | awk '{print $1}' | sort -u >"$scratch/stub-exports"
for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libstdc++.so.6 ld-linux-aarch64.so.1; do
  aarch64-linux-gnu-nm -D --defined-only --format=posix "$(aarch64-linux-gnu-gcc -print-file-name=$lib)" | awk '{print $1}'
done | sed 's/@.*//' | sort -u >"$scratch/runtime"
comm -12 "$scratch/imports" "$scratch/stub-exports" >"$scratch/hailort"
unresolved=$(comm -23 "$scratch/imports" "$scratch/stub-exports" | comm -23 - "$scratch/runtime")
n_imp=$(wc -l <"$scratch/imports") n_hrt=$(wc -l <"$scratch/hailort")
if [ -z "$unresolved" ] && cmp -s "$scratch/stub-exports" "$out/shim-imports.txt" && [ "$n_hrt" -gt 0 ]; then
  pass "(b) the binary imports $n_imp dynamic symbols: $n_hrt from libhailort, all exported by the stub (whose $(wc -l <"$scratch/stub-exports") exports are the shim's HailoRT imports), the other $((n_imp - n_hrt)) from libc/libm/libgcc_s/libstdc++; weak references, which may stay unresolved: ${weak:-none}"
else
  fail "(b) unresolved imports: ${unresolved:-none}; stub exports = shim imports: $(cmp -s "$scratch/stub-exports" "$out/shim-imports.txt" && echo yes || echo no)"
fi
cp "$scratch/hailort" "$out/binary-hailort-imports.txt"
c++filt <"$scratch/hailort" | sed 's/^/  /'

# (b) visibility as the compiler sees it
echo '#pragma GCC visibility push(hidden)' >"$scratch/hidden.h"
vis() { # vis INCLUDE_DIR OBJ: "<Vis> <symbol>" of the shim's undefined references
  aarch64-linux-gnu-g++ -std=c++17 -O3 -fPIC -include "$scratch/hidden.h" -I"$1" -I"$repo/hailort-sys/shim" \
    -c "$repo/hailort-sys/shim/hrt_shim.cpp" -o "$2" &&
    readelf -sW "$2" | awk '$7 == "UND" && NF >= 8 {print $6, $8}'
}
if vis "$inc" "$scratch/vis.o" >"$scratch/vis"; then
  hidden=$(awk 'NR == FNR {h[$1]; next} ($2 in h) && $1 != "DEFAULT" {print $2}' "$scratch/hailort" "$scratch/vis")
  seen=$(awk 'NR == FNR {h[$1]; next} ($2 in h) {print $2}' "$scratch/hailort" "$scratch/vis" | sort -u | wc -l)
  # Control: without HAILORTAPI on class VDevice its members are hidden, so the check can fail.
  cp -r "$inc" "$scratch/inc"
  sed -i 's/class HAILORTAPI VDevice\b/class VDevice/' "$scratch/inc/hailo/vdevice.hpp"
  control=$(vis "$scratch/inc" "$scratch/vis-control.o" | awk '$2 ~ /^_ZN7hailort7VDevice6create/ {print $1}' | sort -u | paste -sd,)
  if [ -z "$hidden" ] && [ "$seen" -eq "$n_hrt" ] && [ "$control" = HIDDEN ]; then
    pass "(b) all $n_hrt are declared with default visibility (HAILORTAPI) in the HailoRT headers: under #pragma GCC visibility push(hidden) the shim still references them DEFAULT (control without HAILORTAPI on VDevice: VDevice::create HIDDEN)"
  else
    fail "(b) visibility: not DEFAULT: ${hidden:-none}; $seen of $n_hrt referenced; control: ${control:-no reference}"
  fi
else
  fail "(b) compiling the shim under #pragma GCC visibility push(hidden)"
fi

# (b) declarations and definitions in the sources
if [ -n "$libsrc" ]; then
  if python3 "$repo/tools/hailort-symbols.py" prove --include "$inc" --src "$libsrc" "$scratch/hailort" >"$scratch/prove"; then
    sed 's/^/  /' "$scratch/prove"
    pass "(b) $(tail -n 1 "$scratch/prove" | sed 's/^source proof: //') ($libsrc)"
  else
    sed 's/^/  /' "$scratch/prove"
    fail "(b) source proof: $(tail -n 1 "$scratch/prove")"
  fi
else
  if python3 "$repo/tools/hailort-symbols.py" prove --include "$inc" "$scratch/hailort" >"$scratch/prove"; then
    pass "(b) $(tail -n 1 "$scratch/prove" | sed 's/^source proof: //')"
  else
    sed 's/^/  /' "$scratch/prove"
    fail "(b) header proof: $(tail -n 1 "$scratch/prove")"
  fi
  skip "(b) definitions: $src is not a source tree (no hailort/libhailort/src)"
fi

# (c)
if [ -n "$real" ]; then
  if [ ! -f "$real" ]; then
    fail "(c) no file $real"
  else
    real_machine=$(readelf -h "$real" | sed -n 's/^ *Machine: *//p')
    real_soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
    aarch64-linux-gnu-nm -D --defined-only --format=posix "$real" | awk '$2 ~ /^[TWiVDBR]$/ {print $1}' | sed 's/@.*//' | sort -u >"$scratch/real"
    missing=$(comm -23 "$scratch/hailort" "$scratch/real")
    echo "  $real: sha256 $(sha256sum "$real" | cut -c1-16)…, $real_machine, SONAME $real_soname, $(wc -l <"$scratch/real") exports"
    if [ "$real_machine" = AArch64 ] && [ "$real_soname" = "$soname" ] && [ -z "$missing" ]; then
      pass "(c) all $n_hrt HailoRT imports are exported by $real (SONAME $real_soname)"
    else
      fail "(c) $real ($real_machine, SONAME $real_soname) does not export: $(c++filt <<<"${missing:-none}" | paste -sd';')"
    fi
  fi
else
  skip "(c) no real libhailort given (second argument, e.g. /usr/lib/$soname from a Pi)"
fi

# run
if ! command -v qemu-aarch64 >/dev/null; then
  apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user >/dev/null 2>&1
fi
if command -v qemu-aarch64 >/dev/null; then
  q=(qemu-aarch64 -L "$sysroot" -E LD_BIND_NOW=1 -E LD_LIBRARY_PATH="$out/stub/lib")
  if v=$("${q[@]}" "$bin" --version 2>&1); then
    pass "under qemu-aarch64 with LD_BIND_NOW=1 and the stub on LD_LIBRARY_PATH: \`hailo-clip --version\` -> $v"
  else
    fail "hailo-clip --version under qemu-aarch64: $v"
  fi
  cat >"$scratch/call.c" <<'C'
#include <stdio.h>
int hailo_get_library_version(void *version);
const char *hailo_get_status_message(int status);
int main(void)
{
    unsigned v[3] = {0};
    int st = hailo_get_library_version(v);
    const char *m = hailo_get_status_message(st);
    printf("hailo_get_library_version -> %d, hailo_get_status_message -> %s\n", st, m ? m : "NULL");
    return st == 7 ? 0 : 1;
}
C
  if aarch64-linux-gnu-gcc -o "$scratch/call" "$scratch/call.c" -L"$out/stub/lib" -lhailort &&
    r=$("${q[@]}" "$scratch/call" 2>&1); then
    pass "the stub's C functions fail cleanly: $r (7 = HAILO_NOT_IMPLEMENTED)"
  else
    fail "calling the stub's C functions: ${r:-did not build}"
  fi
else
  skip "run: no qemu-aarch64 (apt-get install qemu-user)"
fi
finish
