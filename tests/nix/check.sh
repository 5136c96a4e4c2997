#!/usr/bin/env bash
# The Nix checks that run on a machine which cannot build nixpkgs (no binary cache, no GitHub):
#   1. Nix itself (Debian's nix-bin, installed if missing)
#   2. every .nix file in the repo parses
#   3. flake.lock matches flake.nix's inputs (Nix would not rewrite it)
#   4. modules/hailo-clip.nix under lib.evalModules with stubbed NixOS options (module-tests.nix)
#   5. flake.nix's nixosModules evaluate (nixpkgs overridden by nixpkgs' lib alone)
#   6. the unit the module renders (render-unit.sh, mock and hailo) passes `systemd-analyze verify`
#      without a single warning, and `systemd-analyze security --offline` stays at or under
#      EXPOSURE_THRESHOLD (default 20, i.e. exposure 2.0 of 10).
#   7. the Python test scripts of the VM tests (tests/nixos) compile (the VMs themselves need
#      a buildable nixpkgs: `nix flake check` elsewhere).
#   8. the service's own config parser accepts the rendered JSON (`hailo-clip render-config`),
#      using $HAILO_CLIP_BIN or an existing target/{release,debug}/hailo-clip; SKIP if none.
# Steps 4-7 need nixpkgs' lib (see nix-env.sh); without it they are SKIPPED, not failed.
# The last line is "N passed, N failed, N skipped"; the exit status is non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/nix-env.sh"

threshold=${EXPOSURE_THRESHOLD:-20}
passed=0
failed=0
skipped=0
pass() {
  echo "PASS $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $*"
  failed=$((failed + 1))
}
skip() {
  echo "SKIP $*"
  skipped=$((skipped + 1))
}
finish() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit
}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# 1
if ensure_nix && nix-instantiate --version >/dev/null; then
  pass "nix available: $(nix --version)"
else
  fail "nix could not be installed"
  finish
fi

# 2
cd "$repo" || exit 1
if git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t nixfiles < <(git ls-files --cached --others --exclude-standard -- '*.nix' | sort -u)
else
  mapfile -t nixfiles < <(find . -name '*.nix' -not -path './target/*' -not -path './.git/*' | sort)
fi
for f in "${nixfiles[@]}"; do
  [ -f "$f" ] || continue
  if err=$(nix-instantiate --parse "$f" 2>&1 >/dev/null); then
    pass "parse $f"
  else
    fail "parse $f: $err"
  fi
done

# 3: only flake.nix and flake.lock are needed; --no-update-lock-file errors if the lock is stale.
mkdir -p "$scratch/lock"
cp flake.nix flake.lock "$scratch/lock/"
if out=$(nix flake metadata --no-update-lock-file "path:$scratch/lock" 2>&1); then
  pass "flake.lock is consistent with flake.nix"
else
  fail "flake.lock is not consistent with flake.nix: $out"
fi

# 4-6
later=(
  "module tests (tests/nix/module-tests.nix)"
  "flake nixosModules evaluate"
  "render-unit.sh mock" "render-unit.sh hailo"
  "systemd-analyze verify mock" "systemd-analyze verify hailo"
  "systemd-analyze security mock" "systemd-analyze security hailo"
  "service accepts the rendered config (mock)" "service accepts the rendered config (hailo)"
  "VM test scripts compile"
)
if ! libdir=$(find_nixpkgs_lib); then
  echo "$NIXPKGS_LIB_HINT"
  for s in "${later[@]}"; do skip "$s (no nixpkgs lib)"; done
  finish
fi
echo "using nixpkgs lib at $libdir"

# 4
if report=$(nix-instantiate --read-write-mode --eval --strict "$here/run-module-tests.nix" --arg libDir "$libdir" 2>&1); then
  report=$(tr -d '"' <<<"$report")
  while IFS= read -r line; do
    case "$line" in
      "PASS "*) pass "module: ${line#PASS }" ;;
      "FAIL "*) fail "module: ${line#FAIL }" ;;
      *) echo "$line" ;;
    esac
  done <"$report"
else
  fail "module tests did not evaluate: $report"
fi

# 5: a copy keeps target/ and other large untracked trees out of the store.
flk="$scratch/flake"
mkdir -p "$flk"
cp -r flake.nix flake.lock modules nix tests config "$flk/"
if out=$(nix eval --impure --raw --no-write-lock-file --override-input nixpkgs "path:$libdir" \
  "path:$flk#nixosModules" --apply "import $flk/tests/nix/flake-module-check.nix { libDir = $libdir; }" 2>&1) &&
  [ "$(tail -n1 <<<"$out")" = ok ]; then
  pass "flake nixosModules evaluate (default + hailo-clip imported together, no failed assertions)"
else
  fail "flake nixosModules: $out"
fi

# 6
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi
bin=${HAILO_CLIP_BIN:-}
if [ -z "$bin" ]; then
  for b in "$repo/target/release/hailo-clip" "$repo/target/debug/hailo-clip"; do
    if [ -x "$b" ]; then
      bin=$b
      break
    fi
  done
fi
for backend in mock hailo; do
  out="$scratch/unit-$backend"
  if ! msg=$("$here/render-unit.sh" "$out" "$backend" 2>&1); then
    fail "render-unit.sh $backend: $msg"
    skip "systemd-analyze verify $backend: nothing rendered"
    skip "systemd-analyze security $backend: nothing rendered"
    skip "service accepts the rendered config ($backend): nothing rendered"
    continue
  fi
  if grep -q "^Environment=\"XDG_CONFIG_HOME=/etc/xdg\"" "$out/hailo-clip.service" &&
    grep -q "\"type\":\"$backend\"" "$out/hailo-clip.json"; then
    pass "render-unit.sh $backend"
  else
    fail "render-unit.sh $backend: unexpected output"
  fi

  # verify needs an ExecStart that exists on this machine.
  mkdir -p "$out/verify"
  sed "s#/nix/store/00000000000000000000000000000000-hailo-clip/bin/hailo-clip#$(command -v true)#" \
    "$out/hailo-clip.service" >"$out/verify/hailo-clip.service"
  if vout=$(cd "$out/verify" && systemd-analyze verify --man=no ./hailo-clip.service 2>&1) && [ -z "$vout" ]; then
    pass "systemd-analyze verify $backend (no warnings)"
  else
    fail "systemd-analyze verify $backend: $vout"
  fi

  sout=$(cd "$out/verify" && systemd-analyze security --offline=true --threshold="$threshold" ./hailo-clip.service 2>&1)
  rc=$?
  level=$(grep -o 'Overall exposure level for hailo-clip.service: [0-9.]*' <<<"$sout" | awk '{print $NF}')
  if [ "$rc" -eq 0 ] && [ -n "$level" ]; then
    pass "systemd-analyze security $backend: exposure $level (threshold $threshold/100)"
  else
    fail "systemd-analyze security $backend: exposure ${level:-?} over threshold $threshold/100 (rc $rc)"
  fi

  # 8: unknown keys are errors in the service, so this catches module/schema drift.
  if [ -z "$bin" ]; then
    skip "service accepts the rendered config ($backend): no hailo-clip binary (set HAILO_CLIP_BIN or cargo build first)"
  elif perr=$("$bin" render-config --input "$out/hailo-clip.json" --output "$out/effective.json" 2>&1); then
    pass "service accepts the rendered config ($backend)"
  else
    fail "service rejects the rendered config ($backend): $perr"
  fi
done

# 7
if ! command -v python3 >/dev/null 2>&1; then
  skip "VM test scripts compile: python3 not installed"
elif ! scripts=$(nix-instantiate --read-write-mode --eval --strict --json "$here/vm-test-scripts.nix" --arg libDir "$libdir" 2>&1); then
  fail "VM test scripts did not evaluate: $scripts"
else
  for py in $(grep -o '/nix/store/[^"]*\.py' <<<"$scripts"); do
    name=$(basename "$py" .py)
    name=${name#*-}
    if err=$(python3 -c 'import sys; compile(open(sys.argv[1]).read(), sys.argv[1], "exec")' "$py" 2>&1); then
      pass "VM test script compiles: tests/nixos/$name.nix"
    else
      fail "VM test script tests/nixos/$name.nix: $err"
    fi
  done
fi

finish
