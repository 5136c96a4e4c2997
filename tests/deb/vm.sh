#!/usr/bin/env bash
# Usage: tests/deb/vm.sh
#
# The Debian package under a real systemd: a Debian trixie guest (tests/vm/rootfs.sh, booted
# with qemu TCG as tests/vm/run.sh does) installs, reinstalls, upgrades and purges the amd64
# .deb with the mock backend, and runs packaging/install.sh through its good and bad paths
# (guest/hailo-clip-deb-test.sh lists the checks). The last line is "N passed, N failed";
# the exit status is non-zero on failure.
#
# Environment:
#   HAILO_CLIP_VM_CACHE    rootfs cache (default ${XDG_CACHE_HOME:-~/.cache}/hailo-clip-vm, shared with tests/vm)
#   HAILO_CLIP_DEB_SUITE   guest suite (default trixie, Raspberry Pi OS's base)
#   HAILO_CLIP_VM_TIMEOUT  seconds the guest may run (default 1500)
#   HAILO_CLIP_VM_PROFILE  cargo profile of the packaged binary (default release; dev = the debug build)
#   HAILO_CLIP_BIN         package this binary instead of building one
#   HAILO_CLIP_VM_KEEP=1   keep the work directory (image, logs)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../vm/guest.sh
. "$here/../vm/guest.sh"
repo=$(cd "$here/../.." && pwd)
cache=${HAILO_CLIP_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hailo-clip-vm}
suite=${HAILO_CLIP_DEB_SUITE:-trixie}
guest_timeout=${HAILO_CLIP_VM_TIMEOUT:-1500}
gdir=/opt/hailo-clip-deb-test

started=$SECONDS
phase() { printf '==> [%4ds] %s\n' $((SECONDS - started)) "$*"; }
summary=0
abort() {
  echo "FAIL: $*"
  echo "0 passed, 1 failed"
  summary=1
  exit 1
}
[ "$(id -u)" = 0 ] || abort "needs root (mmdebstrap root mode, an image with root-owned files)"

work=$(mktemp -d "${TMPDIR:-/tmp}/hailo-clip-deb-vm.XXXXXX")
qemu_pid=
cleanup() {
  local rc=$?
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  if [ "$summary" = 0 ] && [ "$rc" != 0 ]; then
    echo "FAIL: vm.sh stopped with exit $rc before the guest's results (see above)"
    echo "0 passed, 1 failed"
  fi
  if [ "${HAILO_CLIP_VM_KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  phase "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- the packages: the real one at two versions, and two that only exist to be refused
phase "build the .debs (packaging/build-deb.sh)"
debs=$work/debs
mkdir -p "$debs"
args=(--arch amd64 --flavor cpu --out "$debs")
if [ -n "${HAILO_CLIP_BIN:-}" ]; then
  args+=(--bin "$HAILO_CLIP_BIN")
else
  args+=(--profile "${HAILO_CLIP_VM_PROFILE:-release}")
fi
# Uncompressed: unpacking is most of an install's time under TCG.
export HAILO_CLIP_DEB_COMPRESS=none
bash "$repo/packaging/build-deb.sh" "${args[@]}" --version 0.1.0-1 >/dev/null
# The newer version is the same build repacked: what an upgrade does to config and service
# does not depend on the binary's contents.
mkdir "$work/v2"
dpkg-deb -R "$debs/hailo-clip_0.1.0-1_amd64.deb" "$work/v2"
sed -i 's/^Version: .*/Version: 0.1.1-1/' "$work/v2/DEBIAN/control"
dpkg-deb --root-owner-group -Znone -b "$work/v2" "$debs/hailo-clip_0.1.1-1_amd64.deb" >/dev/null
rm -rf "$work/v2"
fake() { # fake FILE PACKAGE VERSION ARCH DEPENDS: a control-only package
  mkdir -p "$work/fake/DEBIAN"
  printf 'Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: test <t@localhost>\nDepends: %s\nDescription: for install.sh tests\n' \
    "$2" "$3" "$4" "$5" >"$work/fake/DEBIAN/control"
  dpkg-deb --root-owner-group -b "$work/fake" "$debs/$1" >/dev/null
  rm -rf "$work/fake"
}
fake hailo-clip_0.1.0-1_arm64.deb hailo-clip 0.1.0-1 arm64 "libc6"
fake hailo-clip-hailo_0.1.0-1_amd64.deb hailo-clip 0.1.0-1 amd64 "libc6, h10-hailort (>= 5.1.1), h10-hailort (<< 5.1.2~)"
# Stands in for Raspberry Pi's HailoRT package at a version the hailo build was not linked against.
fake h10-hailort_5.2.0-1_amd64.deb h10-hailort 5.2.0-1 amd64 "libc6"

phase "Debian $suite root filesystem (cache: $cache)"
tarball=$(bash "$repo/tests/vm/rootfs.sh" "$suite" "$cache")

phase "assemble the guest image"
root=$work/root
mkdir -p "$root"
tar -xpf "$tarball" -C "$root" --numeric-owner
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
[ -f "$kernel" ] && [ -f "$initrd" ] || abort "no kernel/initrd in the rootfs"
install -d -m 0755 "$root$gdir"
cp "$debs"/*.deb "$root$gdir/"
install -m 0755 "$repo/packaging/install.sh" "$here/guest/hailo-clip-deb-test.sh" "$root$gdir/"
install -m 0644 "$repo/tests/vm/guest/pixel.png.b64" "$repo/packaging/debian/override.conf.example" "$root$gdir/"
install -m 0755 "$repo/tests/hailo/on-device.sh" "$root$gdir/"
install -m 0644 "$repo/tests/fixtures/images/cat.jpg" "$root$gdir/"
chmod -R a+rX "$root$gdir"
install -m 0644 "$here/guest/hailo-clip-deb-test.service" "$root/etc/systemd/system/"
ln -sf ../hailo-clip-deb-test.service "$root/etc/systemd/system/multi-user.target.wants/"
for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$t"
done
echo hailo-clip-deb-vm >"$root/etc/hostname"
guest_image "$root" 768
guest_boot

guest_results "$cache/last-deb-run"
phase "done"
echo "$passed passed, $failed failed"
summary=1
[ "$failed" -eq 0 ]
