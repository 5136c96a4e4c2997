#!/usr/bin/env bash
# Checks of the Hailo platform Nix code that run without building anything:
#   1. every Nix file this part owns parses
#   2. tests/nix/hailo-eval.nix: modules/hailo.nix (+ hosts/pi5 models/configuration) under
#      lib.evalModules with stubbed NixOS options; the real nix/hailo*.nix package files are
#      evaluated against a fake pkgs that records mkDerivation/fetcher arguments.
# Needs Nix (Debian nix-bin, installed if missing) and nixpkgs' lib ($NIXPKGS_LIB or a
# nix-community/nixpkgs.lib snapshot under /work/.mirror); step 2 is SKIPPED without the lib.
# Last line: "N passed, N failed[, N skipped]"; exit status non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/nix-env.sh"

passed=0 failed=0 skipped=0
finish() {
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
  exit
}

if ! ensure_nix || ! nix-instantiate --version >/dev/null; then
  echo "FAIL nix could not be installed"
  failed=1
  finish
fi

cd "$repo"
for f in nix/hailo-versions.nix nix/hailort.nix nix/hailo-driver.nix nix/hailo-firmware.nix \
  modules/hailo.nix hosts/pi5/*.nix tests/nix/hailo-eval.nix; do
  if err=$(nix-instantiate --parse "$f" 2>&1 >/dev/null); then
    echo "PASS parse $f"
    passed=$((passed + 1))
  else
    echo "FAIL parse $f: $err"
    failed=$((failed + 1))
  fi
done

if ! libdir=$(find_nixpkgs_lib); then
  echo "SKIP evalModules checks: $NIXPKGS_LIB_HINT"
  skipped=$((skipped + 1))
  finish
fi

# One line per check: "PASS name" or "FAIL name: detail".
expr="let lib = import $libdir; in
  lib.concatMapStrings (r: (if r.ok then \"PASS \" + r.name else \"FAIL \" + r.name + \": \" + r.detail) + \"\n\")
    (import $repo/tests/nix/hailo-eval.nix { inherit lib; repo = $repo; })"
if ! out=$(nix eval --raw --impure --expr "$expr" 2>&1); then
  echo "FAIL evaluating tests/nix/hailo-eval.nix: $out"
  failed=$((failed + 1))
  finish
fi
printf "%s\n" "$out"
passed=$((passed + $(grep -c '^PASS ' <<<"$out")))
failed=$((failed + $(grep -c '^FAIL ' <<<"$out")))
finish
