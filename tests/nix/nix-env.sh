# shellcheck shell=bash
# Sourced by check.sh and render-unit.sh: puts Nix on the machine and finds nixpkgs' lib.
# Nix comes from Debian (nix-bin, Nix 2.8); no binary cache or flake registry is configured,
# because the only network here is package registries.

ensure_nix() {
  if ! command -v nix-instantiate >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "nix-instantiate not found; install Nix (Debian: apt-get install nix-bin)" >&2
      return 1
    fi
    echo "installing nix-bin from apt" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin >&2 || return 1
  fi
  local conf=/etc/nix/nix.conf
  if [ -w /etc/nix ] || [ -w "$conf" ]; then
    touch "$conf"
    if ! grep -Eq '^experimental-features.*flakes' "$conf"; then
      sed -i '/^experimental-features/d' "$conf"
      echo 'experimental-features = nix-command flakes' >>"$conf"
    fi
    grep -Eq '^substituters' "$conf" || echo 'substituters =' >>"$conf"
    grep -Eq '^flake-registry' "$conf" || echo 'flake-registry =' >>"$conf"
  fi
}

# Prints the path of nixpkgs' lib directory (the one holding modules.nix), or returns 1.
# Order: $NIXPKGS_LIB (a nixpkgs or nixpkgs.lib checkout, or its lib/ itself), then a git
# snapshot of nix-community/nixpkgs.lib or NixOS/nixpkgs under /work/.mirror (the fetch tool's).
find_nixpkgs_lib() {
  local d
  if [ -n "${NIXPKGS_LIB:-}" ]; then
    for d in "$NIXPKGS_LIB/lib" "$NIXPKGS_LIB"; do
      if [ -f "$d/modules.nix" ]; then
        echo "$d"
        return 0
      fi
    done
    echo "NIXPKGS_LIB=$NIXPKGS_LIB holds no lib/modules.nix" >&2
    return 1
  fi
  local gitdir rev out
  local mirror=${HAILO_CLIP_MIRROR:-/work/.mirror}
  for gitdir in "$mirror/nix-community+nixpkgs.lib/repo" "$mirror/NixOS+nixpkgs/repo"; do
    [ -d "$gitdir" ] || continue
    rev=$(git --git-dir="$gitdir" rev-parse HEAD 2>/dev/null) || continue
    out="${TMPDIR:-/tmp}/hailo-clip-nixpkgs-lib-$rev"
    if [ ! -f "$out/lib/modules.nix" ]; then
      rm -rf "$out.tmp" && mkdir -p "$out.tmp"
      git --git-dir="$gitdir" archive "$rev" lib | tar -x -C "$out.tmp" || continue
      rm -rf "$out" && mv "$out.tmp" "$out"
    fi
    echo "$out/lib"
    return 0
  done
  return 1
}

# shellcheck disable=SC2034 # read by the scripts that source this file
NIXPKGS_LIB_HINT="nixpkgs' lib not found. Set NIXPKGS_LIB to a checkout of nixpkgs or of github.com/nix-community/nixpkgs.lib (any recent revision), or bring github:nix-community/nixpkgs.lib into /work/.mirror with the session's fetch tool."
