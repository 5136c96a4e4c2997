#!/usr/bin/env bash
# Usage: tests/nix/render-unit.sh OUTDIR [mock|hailo] [HOST]
#
# Writes what modules/hailo-clip.nix produces, evaluated with lib.evalModules (tests/nix/harness.nix):
#   OUTDIR/hailo-clip.service  the unit, in NixOS's encoding, plus [Install] WantedBy=multi-user.target
#   OUTDIR/hailo-clip.json     the rendered settings (compact JSON; NixOS pretty-prints the same value)
# Backend defaults to mock; HOST overrides settings.server.host (module default 127.0.0.1).
#
# Contract for consumers running the unit on a plain systemd host:
#   - ExecStart holds the placeholder binary path
#       /nix/store/00000000000000000000000000000000-hailo-clip/bin/hailo-clip
#     rewrite it to the real binary, e.g.
#       sed -i 's#/nix/store/00000000000000000000000000000000-hailo-clip/bin/hailo-clip#/usr/local/bin/hailo-clip#' hailo-clip.service
#   - install hailo-clip.json as /etc/xdg/hailo-clip/hailo-clip.json (the unit sets XDG_CONFIG_HOME=/etc/xdg)
#   - create the static system user and group `hailo-clip` (NixOS does this from users.users);
#     for the hailo backend also a `hailo` group owning /dev/hailo0
#   - X-Restart-Triggers= names a store path; systemd ignores X- keys, so it can stay.
#
# Exit status: 0 written; 77 nixpkgs' lib not found (nothing written; see the message); other: error.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/nix-env.sh"

outdir=${1:?usage: render-unit.sh OUTDIR [mock|hailo] [HOST]}
backend=${2:-mock}
host=${3:-}
case "$backend" in mock | hailo) ;; *)
  echo "backend must be mock or hailo, not $backend" >&2
  exit 2
  ;;
esac

ensure_nix
if ! libdir=$(find_nixpkgs_lib); then
  echo "SKIP: $NIXPKGS_LIB_HINT" >&2
  exit 77
fi

args=(--arg libDir "$libdir" --argstr backend "$backend")
[ -n "$host" ] && args+=(--argstr host "$host")
# --read-write-mode: builtins.toFile must really write the files into the store.
get() {
  nix-instantiate --read-write-mode --eval --strict "$here/render-unit.nix" "${args[@]}" -A "$1" | tr -d '"'
}
unit=$(get unit)
json=$(get json)
mkdir -p "$outdir"
install -m 0644 "$unit" "$outdir/hailo-clip.service"
install -m 0644 "$json" "$outdir/hailo-clip.json"
echo "wrote $outdir/hailo-clip.service and $outdir/hailo-clip.json (backend $backend)"
