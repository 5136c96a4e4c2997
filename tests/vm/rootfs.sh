#!/usr/bin/env bash
# Usage: tests/vm/rootfs.sh SUITE CACHEDIR
# Prints the path of a Debian root filesystem tarball (minbase + systemd + curl + kernel and
# initramfs for -kernel/-initrd boot), built with mmdebstrap on first use and cached under
# CACHEDIR keyed by a hash of this file, the suite and the mirror: editing the recipe below
# rebuilds it, a re-run reuses it.
set -euo pipefail
suite=${1:?usage: rootfs.sh SUITE CACHEDIR}
cache=${2:?usage: rootfs.sh SUITE CACHEDIR}
mirror=${HAILO_CLIP_VM_MIRROR:-http://deb.debian.org/debian}

packages=(
  systemd systemd-sysv udev kmod # PID 1, device units for /dev/vda
  curl                           # the HTTP checks
  jq                             # tests/hailo/on-device.sh in the package guest
  linux-image-amd64 initramfs-tools
)

key=$( (
  cat "${BASH_SOURCE[0]}"
  echo "$suite $mirror"
) | sha256sum | cut -c1-16)
tarball=$cache/rootfs-$suite-$key.tar
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

# Debian's default initramfs (MODULES=most, ~35 MB) takes ~30 s of an emulated boot to unpack
# and probe; the guest only needs its root disk.
initramfs_hook='echo MODULES=list >"$1/etc/initramfs-tools/conf.d/hailo-clip-vm" &&
  printf "%s\n" virtio_pci virtio_blk ext4 >>"$1/etc/initramfs-tools/modules" &&
  chroot "$1" update-initramfs -u -k all'

echo "building the guest root filesystem with mmdebstrap ($suite, $mirror; takes minutes)" >&2
trap 'rm -f "$cache/partial-$key.tar"' EXIT
IFS=,
mmdebstrap --variant=minbase --include="${packages[*]}" \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --aptopt='Acquire::Retries "3"' \
  --customize-hook="$initramfs_hook" \
  "$suite" "$cache/partial-$key.tar" "$mirror" >&2
unset IFS
mv "$cache/partial-$key.tar" "$tarball"
# Older rootfs builds of other recipes are dead weight.
find "$cache" -maxdepth 1 -name "rootfs-$suite-*.tar" ! -path "$tarball" -delete
echo "$tarball"
