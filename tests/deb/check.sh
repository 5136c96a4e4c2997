#!/usr/bin/env bash
# Usage: tests/deb/check.sh
# The Debian packaging checks (scripts/test.sh runs them):
#   1. the committed units (packaging/debian/hailo-clip.{cpu,hailo}.service) equal what
#      gen-units.sh generates from modules/hailo-clip.nix now: the NixOS and Debian units cannot
#      drift (SKIP without nixpkgs' lib, as tests/nix/check.sh does)
#   2. each unit passes `systemd-analyze verify` without a warning and
#      `systemd-analyze security --offline` at or under EXPOSURE_THRESHOLD (default 20 = 2.0)
#   3. the maintainer scripts and installer parse (sh -n / bash -n)
#   4. packaging/build-deb.sh packs a .deb (from $HAILO_CLIP_BIN or target/debug/hailo-clip, SKIP
#      if neither) with the binary, the unit, the sysusers file, the conffile and pinned Depends
#   5. with HAILO_CLIP_VM_TEST=1: tests/deb/vm.sh, the package in a trixie guest under systemd
# The last line is "N passed, N failed, N skipped"; the exit status is non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
threshold=${EXPOSURE_THRESHOLD:-20}
passed=0 failed=0 skipped=0
pass() { echo "PASS $*" && passed=$((passed + 1)); }
fail() { echo "FAIL $*" && failed=$((failed + 1)); }
skip() { echo "SKIP $*" && skipped=$((skipped + 1)); }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
units=$repo/packaging/debian

# 1
rc=0
msg=$(bash "$units/gen-units.sh" "$scratch/gen" 2>&1) || rc=$?
if [ "$rc" = 77 ]; then
  skip "units generated from the NixOS module (no nixpkgs lib): $msg"
elif [ "$rc" != 0 ]; then
  fail "packaging/debian/gen-units.sh: $msg"
else
  for flavor in cpu hailo; do
    if d=$(diff -u "$units/hailo-clip.$flavor.service" "$scratch/gen/hailo-clip.$flavor.service"); then
      pass "hailo-clip.$flavor.service is what gen-units.sh makes of modules/hailo-clip.nix"
    else
      fail "hailo-clip.$flavor.service differs from the module's unit; run packaging/debian/gen-units.sh and commit:
$d"
    fi
  done
fi

# 2
command -v systemd-analyze >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }
for flavor in cpu hailo; do
  mkdir -p "$scratch/verify-$flavor"
  # verify needs an ExecStart that exists on this machine.
  sed "s#^ExecStart=/usr/bin/hailo-clip#ExecStart=$(command -v true)#" "$units/hailo-clip.$flavor.service" \
    >"$scratch/verify-$flavor/hailo-clip.service"
  if v=$(cd "$scratch/verify-$flavor" && systemd-analyze verify --man=no ./hailo-clip.service 2>&1) && [ -z "$v" ]; then
    pass "systemd-analyze verify hailo-clip.$flavor.service (no warnings)"
  else
    fail "systemd-analyze verify hailo-clip.$flavor.service: $v"
  fi
  s=$(cd "$scratch/verify-$flavor" && systemd-analyze security --offline=true --threshold="$threshold" ./hailo-clip.service 2>&1)
  rc=$?
  level=$(grep -o 'Overall exposure level for hailo-clip.service: [0-9.]*' <<<"$s" | awk '{print $NF}')
  if [ "$rc" = 0 ] && [ -n "$level" ]; then
    pass "systemd-analyze security hailo-clip.$flavor.service: exposure $level (threshold $threshold/100)"
  else
    fail "systemd-analyze security hailo-clip.$flavor.service: exposure ${level:-?} over $threshold/100 (rc $rc)"
  fi
done

# 3
for f in postinst prerm postrm hailo-clip-apply-config; do
  if e=$(sh -n "$units/$f" 2>&1); then pass "sh -n packaging/debian/$f"; else fail "packaging/debian/$f: $e"; fi
done
for f in packaging/install.sh packaging/build-deb.sh packaging/debian/gen-units.sh tests/deb/vm.sh tests/deb/guest/hailo-clip-deb-test.sh; do
  if e=$(bash -n "$repo/$f" 2>&1); then pass "bash -n $f"; else fail "$f: $e"; fi
done

# 4
bin=${HAILO_CLIP_BIN:-$repo/target/debug/hailo-clip}
if [ ! -x "$bin" ]; then
  skip "build-deb.sh: no binary at $bin (cargo build first, or set HAILO_CLIP_BIN)"
elif ! deb=$(HAILO_CLIP_DEB_COMPRESS=gzip bash "$repo/packaging/build-deb.sh" --bin "$bin" --arch amd64 --out "$scratch/deb" 2>"$scratch/build.log" | tail -n 1); then
  fail "build-deb.sh: $(cat "$scratch/build.log")"
else
  contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
  missing=()
  for f in ./usr/bin/hailo-clip ./usr/sbin/hailo-clip-apply-config ./usr/lib/systemd/system/hailo-clip.service \
    ./usr/lib/sysusers.d/hailo-clip.conf ./etc/hailo/hailo-clip.yaml ./usr/share/doc/hailo-clip/examples/override.conf.example; do
    grep -qx "$f" <<<"$contents" || missing+=("$f")
  done
  if [ ${#missing[@]} = 0 ]; then pass "build-deb.sh: $(basename "$deb") holds binary, unit, sysusers, conffile, drop-in example"; else fail "build-deb.sh: missing ${missing[*]}"; fi
  dpkg-deb -e "$deb" "$scratch/ctl"
  if [ "$(cat "$scratch/ctl/conffiles")" = /etc/hailo/hailo-clip.yaml ]; then pass "conffiles: /etc/hailo/hailo-clip.yaml"; else fail "conffiles: $(cat "$scratch/ctl/conffiles")"; fi
  dpkg-deb -x "$deb" "$scratch/x"
  if cmp -s "$scratch/x/usr/lib/systemd/system/hailo-clip.service" "$units/hailo-clip.cpu.service"; then pass "the packaged unit is hailo-clip.cpu.service"; else fail "the packaged unit is not hailo-clip.cpu.service"; fi
  if out=$("$scratch/x/usr/bin/hailo-clip" render-config --input "$scratch/x/etc/hailo/hailo-clip.yaml" --output "$scratch/r.json" 2>&1) &&
    e2=$("$bin" render-config --input "$units/hailo-clip.hailo.yaml" --output "$scratch/r2.json" 2>&1); then
    pass "the packaged YAMLs (cpu, hailo) are valid configs"
  else
    fail "a packaged YAML is rejected: $out ${e2:-}"
  fi
  # The hailo flavor's Depends: any x86-64 executable will do (only the control is checked).
  if hdeb=$(HAILO_CLIP_DEB_COMPRESS=gzip bash "$repo/packaging/build-deb.sh" --bin "$(type -P true)" --arch amd64 --flavor hailo --out "$scratch/hdeb" 2>/dev/null | tail -n 1) &&
    dep=$(dpkg-deb -f "$hdeb" Depends) && grep -q 'h10-hailort (>= 5.1.1), h10-hailort (<< 5.1.2~)' <<<"$dep"; then
    pass "hailo flavor Depends pins h10-hailort 5.1.1: $dep"
  else
    fail "hailo flavor Depends: ${dep:-not built}"
  fi
fi

# 5
if [ "${HAILO_CLIP_VM_TEST:-0}" = 1 ]; then
  if bash "$here/vm.sh"; then pass "tests/deb/vm.sh (trixie guest)"; else fail "tests/deb/vm.sh (trixie guest; its output above)"; fi
else
  skip "tests/deb/vm.sh: set HAILO_CLIP_VM_TEST=1 (.ci/run does) to boot the trixie guest"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
