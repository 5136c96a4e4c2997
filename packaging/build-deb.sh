#!/usr/bin/env bash
# Usage: packaging/build-deb.sh [--arch amd64|arm64] [--flavor cpu|hailo] [--version VERSION]
#                               [--profile release|dev] [--bin PATH] [--out DIR]
# Builds hailo-clip_VERSION_ARCH.deb with dpkg-deb (no debhelper, no source package):
#   cpu    the default features (onnx; mock is always built in), unit packaging/debian/hailo-clip.cpu.service
#   hailo  --features hailo, linked against the system libhailort; Depends pins h10-hailort to the
#          version the binary was built for (HAILORT_VERSION, default 5.1.1), unit hailo-clip.hailo.service
# arm64 cross-compiles for aarch64-unknown-linux-gnu with Debian's gcc-aarch64-linux-gnu (installed
# from apt when missing, as is the rustup target). --bin packages an existing binary instead.
# VERSION defaults to Cargo.toml's version with Debian revision -1. Prints the .deb's path last.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
arch=$(dpkg --print-architecture)
flavor=cpu
version=
profile=release
bin=
out=$repo/target/deb
while [ $# -gt 0 ]; do
  case $1 in
  --arch) arch=$2 && shift 2 ;;
  --flavor) flavor=$2 && shift 2 ;;
  --version) version=$2 && shift 2 ;;
  --profile) profile=$2 && shift 2 ;;
  --bin) bin=$2 && shift 2 ;;
  --out) out=$2 && shift 2 ;;
  *) echo "unknown argument $1 (see the usage at the top of $0)" >&2 && exit 2 ;;
  esac
done
case $arch in
amd64) triple=x86_64-unknown-linux-gnu ;;
arm64) triple=aarch64-unknown-linux-gnu ;;
*) echo "--arch must be amd64 or arm64, not $arch" >&2 && exit 2 ;;
esac
case $flavor in cpu | hailo) ;; *) echo "--flavor must be cpu or hailo, not $flavor" >&2 && exit 2 ;; esac
hailort_version=${HAILORT_VERSION:-5.1.1}
if [ -z "$version" ]; then
  version=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -n 1)-1
fi

apt_need() { # apt_need CMD PACKAGE...
  command -v "$1" >/dev/null && return 0
  shift
  echo "installing $* from apt" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

host_triple=$(rustc -vV | sed -n 's/^host: //p')
strip=strip
if [ "$triple" != "$host_triple" ]; then
  case $triple in
  aarch64-*) apt_need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
    strip=aarch64-linux-gnu-strip
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ ;;
  esac
fi

if [ -z "$bin" ]; then
  if [ "$triple" != "$host_triple" ] && ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    rustup target add "$triple" >&2
  fi
  features=()
  [ "$flavor" = hailo ] && features=(--features hailo)
  # The host's own target builds into target/<profile>, where `cargo test` already built it.
  target=()
  sub=
  if [ "$triple" != "$host_triple" ]; then
    target=(--target "$triple")
    sub=$triple/
  fi
  # A shipped amd64 build gets libjpeg-turbo's SIMD (test builds reuse what cargo test made).
  if [ "$profile" = release ] && [ "$triple" = x86_64-unknown-linux-gnu ]; then
    bash "$repo/scripts/ensure-nasm.sh" release
  fi
  (cd "$repo" && cargo build --locked --profile "$profile" "${target[@]}" --bin hailo-clip "${features[@]}" >&2)
  dir=$profile
  [ "$profile" = dev ] && dir=debug
  bin=${CARGO_TARGET_DIR:-$repo/target}/$sub$dir/hailo-clip
fi
[ -x "$bin" ] || { echo "no binary at $bin" >&2; exit 1; }

machine=$(LC_ALL=C readelf -h "$bin" | sed -n 's/^ *Machine: *//p')
case $arch/$machine in
amd64/*X86-64* | arm64/*AArch64*) ;;
*) echo "$bin is a '$machine' binary, not $arch" >&2 && exit 1 ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
d=$here/debian
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd/system" \
  "$root/usr/lib/sysusers.d" "$root/etc/hailo" "$root/usr/share/doc/hailo-clip/examples"
# Debug info is most of a debug build's size; the symbols stay for backtraces.
"$strip" --strip-debug -o "$root/usr/bin/hailo-clip" "$bin"
chmod 0755 "$root/usr/bin/hailo-clip"
install -m 0755 "$d/hailo-clip-apply-config" "$root/usr/sbin/"
install -m 0644 "$d/hailo-clip.$flavor.service" "$root/usr/lib/systemd/system/hailo-clip.service"
install -m 0644 "$d/hailo-clip.sysusers.conf" "$root/usr/lib/sysusers.d/hailo-clip.conf"
install -m 0644 "$d/hailo-clip.$flavor.yaml" "$root/etc/hailo/hailo-clip.yaml"
install -m 0644 "$d/override.conf.example" "$root/usr/share/doc/hailo-clip/examples/"
install -m 0644 "$repo/config/defaults.json" "$root/usr/share/doc/hailo-clip/"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: hailo-clip"
  echo
  echo "Files: *"
  echo "License: MIT"
} >"$root/usr/share/doc/hailo-clip/copyright"
install -m 0755 "$d/postinst" "$d/prerm" "$d/postrm" "$root/DEBIAN/"
echo /etc/hailo/hailo-clip.yaml >"$root/DEBIAN/conffiles"

# The newest glibc symbol version the binary needs is the libc6 it depends on.
glibc=$(LC_ALL=C readelf -V --wide "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
depends="libc6 (>= $glibc), libgcc-s1, systemd, init-system-helpers, passwd"
if [ "$flavor" = hailo ]; then
  next=$(awk -F. '{print $1"."$2"."$3+1}' <<<"$hailort_version")
  # Library, driver, firmware and HEFs must be the same HailoRT version (else HAILO error 76).
  depends="$depends, libstdc++6, h10-hailort (>= $hailort_version), h10-hailort (<< $next~)"
fi
cat >"$root/DEBIAN/control" <<CONTROL
Package: hailo-clip
Version: $version
Architecture: $arch
Maintainer: hailo-clip maintainers <hailo-clip@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Suggests: curl
Section: science
Priority: optional
Homepage: https://github.com/hailo-clip/hailo-clip
Description: CLIP zero-shot image classification service ($flavor backend)
 An HTTP service that ranks labels for an image with CLIP embeddings, built for
 a Raspberry Pi 5 with the Hailo-10H NPU (AI HAT+ 2); the CPU build runs the
 ONNX Runtime backend. Config: /etc/hailo/hailo-clip.yaml, then
 hailo-clip-apply-config. Service: hailo-clip.service.
CONTROL

mkdir -p "$out"
deb=$out/hailo-clip_${version}_${arch}.deb
# HAILO_CLIP_DEB_COMPRESS=gzip packs a test build in seconds instead of half a minute.
dpkg-deb --root-owner-group -Z"${HAILO_CLIP_DEB_COMPRESS:-xz}" --build "$root" "$deb" >&2
echo "$deb"
