#!/usr/bin/env bash
# Usage: tests/deb/arm64.sh
#
# The arm64 CPU package, cross-built on an x86 Debian machine and run under qemu-aarch64
# (Debian's qemu-user; the arm64 C libraries come from the cross sysroot /usr/aarch64-linux-gnu):
#   1. packaging/build-deb.sh --arch arm64 (cross compiler and Rust target installed when missing)
#   2. the binary's NEEDED libraries (readelf -d) are all in Debian's libc6/libgcc-s1
#   3. the HTTP test suite (tests/api.rs: the real server over HTTP, mock backend) compiled for
#      aarch64, run by cargo through qemu-aarch64
#   4. the packaged binary itself under qemu-aarch64: `serve` with the mock backend answers
#      /health 200 and a classify request
# The last line is "N passed, N failed". Not part of scripts/test.sh: the cross build of every
# dependency takes long on a small machine (docs/deploy-raspberry-pi-os.md gives the figure).
# Environment: HAILO_CLIP_ARM64_PROFILE (cargo profile, default release; dev skips two timing tests).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
profile=${HAILO_CLIP_ARM64_PROFILE:-release}
triple=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
passed=0 failed=0
pass() { echo "PASS $*" && passed=$((passed + 1)); }
fail() { echo "FAIL $*" && failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
started=$SECONDS
scratch=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$scratch"' EXIT

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"

# 1
t=$SECONDS
if deb=$(bash "$repo/packaging/build-deb.sh" --arch arm64 --profile "$profile" --out "$scratch/deb" | tail -n 1) && [ -f "$deb" ]; then
  pass "build-deb.sh --arch arm64 --profile $profile: $(basename "$deb"), $(($(stat -c %s "$deb") / 1024 / 1024)) MiB, $((SECONDS - t)) s"
else
  fail "build-deb.sh --arch arm64"
  finish
fi
dpkg-deb -x "$deb" "$scratch/x"
bin=$scratch/x/usr/bin/hailo-clip

# 2
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
machine=$(readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
unknown=$(for lib in $needed; do case $lib in libc.so.6 | libm.so.6 | libgcc_s.so.1 | ld-linux-aarch64.so.1) ;; *) echo "$lib" ;; esac; done)
if [ "$machine" = AArch64 ] && [ -z "$unknown" ]; then
  pass "$machine binary; NEEDED: $needed(libc6, libgcc-s1); Depends: $(dpkg-deb -f "$deb" Depends)"
else
  fail "binary $machine, NEEDED outside libc6/libgcc-s1: $unknown"
fi

# 3
t=$SECONDS
# Two tests bound wall-clock time (a 429 within 250 ms; a client that gives up after 80 ms while
# its job is queued); user-mode emulation is many times slower than the hardware, so a debug
# build misses those margins (measured: the 429 took 785 ms). They are skipped, by name.
skips=()
if [ "$profile" = dev ]; then
  skips=(--skip full_queue_answers_429_at_once --skip abandoned_requests_are_skipped_by_the_device)
fi
if (cd "$repo" && cargo test --locked --profile "$profile" --target "$triple" --test api -- "${skips[@]}" 2>&1 | tee "$scratch/api.log" | grep -E '^test result|FAILED|panicked'); then
  result=$(grep '^test result' "$scratch/api.log" | tail -n 1)
  if grep -q '^test result: ok' "$scratch/api.log"; then
    pass "tests/api.rs under qemu-aarch64: $result${skips:+ (2 wall-clock tests skipped)} (build + run $((SECONDS - t)) s)"
  else
    fail "tests/api.rs under qemu-aarch64: $result"
  fi
else
  fail "tests/api.rs under qemu-aarch64 (see above)"
fi

# 4
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'server: {host: 127.0.0.1, port: %s}\nbackend: {type: mock}\nlogging: {level: warn}\n' "$port" >"$scratch/mock.yaml"
qemu-aarch64 -L "$sysroot" "$bin" serve --config "$scratch/mock.yaml" >"$scratch/serve.log" 2>&1 &
server=$!
code=000
for _ in $(seq 1 240); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/health" || true)
  [ "$code" = 200 ] && break
  sleep 0.5
done
png=$(cat "$repo/tests/vm/guest/pixel.png.b64")
c=$(curl -s -o "$scratch/body" -w '%{http_code}' --max-time 60 -H 'content-type: application/json' \
  -d "{\"image\":\"$png\",\"labels\":[\"a cat\",\"a dog\"]}" "http://127.0.0.1:$port/v1/classify" || true)
if [ "$code" = 200 ] && [ "$c" = 200 ] && grep -q '"backend":"mock"' "$scratch/body"; then
  pass "packaged arm64 binary under qemu-aarch64: /health 200, classify 200 ($(head -c 120 "$scratch/body")...)"
else
  fail "packaged arm64 binary under qemu-aarch64: /health $code, classify $c; $(tail -n 5 "$scratch/serve.log")"
fi
echo "total $((SECONDS - started)) s"
finish
