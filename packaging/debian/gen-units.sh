#!/usr/bin/env bash
# Usage: packaging/debian/gen-units.sh [OUTDIR]   (default: packaging/debian)
#
# Writes the Debian package's systemd units, generated from the NixOS module's own unit
# (modules/hailo-clip.nix evaluated by tests/nix/render-unit.nix), so the two cannot drift:
#   hailo-clip.cpu.service    backend onnx (mock runs under it too): the CPU package (amd64, arm64)
#   hailo-clip.hailo.service  backend hailo, text on onnx: the arm64 package linked against libhailort
# The generated files are committed (building a .deb needs no Nix); tests/deb/check.sh
# regenerates them and fails on any difference.
#
# The only changes to the module's unit, each because Debian is not NixOS:
#   - ExecStart: /usr/bin/hailo-clip instead of the store path
#   - X-Restart-Triggers dropped: it names a store path; the package's scripts restart instead
#   - SupplementaryGroups dropped: the device node's group is read on the target at install
#     time (postinst adds hailo-clip to it), so it cannot be a fixed name in the unit
#   - LimitNOFILE=65536 added: Debian's default soft limit (1024) is low for a busy HTTP server
# Exit status: 0 written; 77 nixpkgs' lib not found (see tests/nix/nix-env.sh); other: error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$repo/tests/nix/nix-env.sh"
out=${1:-$here}

ensure_nix
if ! libdir=$(find_nixpkgs_lib); then
  echo "SKIP: $NIXPKGS_LIB_HINT" >&2
  exit 77
fi

placeholder=/nix/store/00000000000000000000000000000000-hailo-clip/bin/hailo-clip
mkdir -p "$out"
for flavor in cpu hailo; do
  text=$(nix-instantiate --eval --strict --json "$here/render-unit.nix" \
    --arg libDir "$libdir" --argstr flavor "$flavor" | python3 -c 'import json,sys; sys.stdout.write(json.load(sys.stdin))')
  {
    echo "# Generated from modules/hailo-clip.nix (flavor $flavor, packaging/debian/render-unit.nix)"
    echo "# by packaging/debian/gen-units.sh; do not edit."
    echo "# Local changes belong in a drop-in: systemctl edit hailo-clip (see /usr/share/doc/hailo-clip/examples)."
    sed -e '1{/^# /d}' \
      -e "s#^ExecStart=$placeholder#ExecStart=/usr/bin/hailo-clip#" \
      -e '/^X-Restart-Triggers=/d' \
      -e '/^SupplementaryGroups=/d' \
      -e "/^LimitNOFILE=/d" \
      -e '/^[[]Service[]]$/a LimitNOFILE=65536' \
      <<<"$text"
  } >"$out/hailo-clip.$flavor.service.tmp"
  grep -q "^ExecStart=/usr/bin/hailo-clip serve$" "$out/hailo-clip.$flavor.service.tmp" || {
    echo "the module's ExecStart no longer starts with $placeholder (render-unit.nix changed?)" >&2
    exit 1
  }
  mv "$out/hailo-clip.$flavor.service.tmp" "$out/hailo-clip.$flavor.service"
  echo "wrote $out/hailo-clip.$flavor.service"
done
