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

# nixos-raspberrypi's `main` (the branch flake.nix follows) for the API checks; optional.
rpi_arg=""
rpi_git=${NIXOS_RASPBERRYPI_GIT:-/work/.mirror/nvmd+nixos-raspberrypi/repo}
if [ -d "$rpi_git" ] && rev=$(git --git-dir="$rpi_git" rev-parse --verify -q main 2>/dev/null); then
  rpi_src="${TMPDIR:-/tmp}/hailo-clip-nixos-raspberrypi-$rev"
  if [ ! -f "$rpi_src/flake.nix" ]; then
    rm -rf "$rpi_src.tmp" && mkdir -p "$rpi_src.tmp" &&
      git --git-dir="$rpi_git" archive "$rev" | tar -x -C "$rpi_src.tmp" &&
      mv "$rpi_src.tmp" "$rpi_src"
  fi
  [ -f "$rpi_src/flake.nix" ] && rpi_arg="rpiSrc = $rpi_src;"
fi
if [ -z "$rpi_arg" ]; then
  echo "SKIP nixos-raspberrypi API checks: no snapshot of nvmd/nixos-raspberrypi (set NIXOS_RASPBERRYPI_GIT to a git dir with branch main)"
  skipped=$((skipped + 1))
fi

# One line per check: "PASS name" or "FAIL name: detail".
expr="let lib = import $libdir; in
  lib.concatMapStrings (r: (if r.ok then \"PASS \" + r.name else \"FAIL \" + r.name + \": \" + r.detail) + \"\n\")
    (import $repo/tests/nix/hailo-eval.nix { inherit lib; repo = $repo; $rpi_arg })"
if ! out=$(nix eval --raw --impure --expr "$expr" 2>&1); then
  echo "FAIL evaluating tests/nix/hailo-eval.nix: $out"
  failed=$((failed + 1))
  finish
fi
printf "%s\n" "$out"
passed=$((passed + $(grep -c '^PASS ' <<<"$out")))
failed=$((failed + $(grep -c '^FAIL ' <<<"$out")))
finish
