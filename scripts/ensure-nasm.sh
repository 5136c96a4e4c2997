#!/usr/bin/env bash
# libjpeg-turbo's x86_64 SIMD (mozjpeg-sys) is assembled by nasm; without it the crate builds a
# plain-C decoder, about 1.5x slower on 12 MP photos, with only a cargo warning. Release builds
# that are measured or shipped call this first:
#   bash scripts/ensure-nasm.sh [PROFILE]     (PROFILE: release by default)
# It installs nasm from apt when missing and then drops the profile's mozjpeg-sys build, which
# was made without it. Nothing to do on aarch64 (the NEON code goes through the C compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
[ "$(uname -m)" = x86_64 ] || exit 0
command -v nasm >/dev/null && exit 0
echo "installing nasm from apt (libjpeg-turbo's SIMD)" >&2
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nasm >&2
cargo clean --quiet --profile "$profile" -p mozjpeg-sys
