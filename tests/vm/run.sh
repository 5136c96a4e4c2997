#!/usr/bin/env bash
# Usage: tests/vm/run.sh
#
# Runtime test of the hailo-clip systemd unit under a real systemd: the unit and JSON rendered
# from modules/hailo-clip.nix (tests/nix/render-unit.sh, mock backend) run in a Debian guest
# booted with qemu (TCG only: KVM hangs on the build machines). The checks run inside the guest
# (guest/hailo-clip-vm-test.sh) and come back over a second serial port.
# The last line is "N passed, N failed[, N skipped]"; the exit status is non-zero on failure.
# Without nixpkgs' lib the rendered unit cannot be had: the run is SKIPPED (exit 0), never
# replaced by a hand-written unit.
#
# Environment:
#   HAILO_CLIP_VM_CACHE    rootfs cache (default ${XDG_CACHE_HOME:-~/.cache}/hailo-clip-vm)
#   HAILO_CLIP_VM_SUITE    Debian suite of the guest (default trixie, or the host's if a newer Debian);
#                          the host-built binary needs a guest glibc at least as new as the host's
#   HAILO_CLIP_VM_TIMEOUT  seconds the guest may run (default 1200)
#   HAILO_CLIP_VM_PROFILE  cargo profile of the binary under test (default release; `dev`
#                          reuses the debug build `cargo test` already made, for a tight CI budget)
#   HAILO_CLIP_BIN         use this binary instead of building one
#   HAILO_CLIP_VM_KEEP=1   keep the work directory (image, logs)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=guest.sh
. "$here/guest.sh"
repo=$(cd "$here/../.." && pwd)
cache=${HAILO_CLIP_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hailo-clip-vm}
guest_timeout=${HAILO_CLIP_VM_TIMEOUT:-1200}
if [ -z "${HAILO_CLIP_VM_SUITE:-}" ]; then
  # trixie (Raspberry Pi OS's base, and the suite of tests/deb/vm.sh, so both share one cached
  # rootfs), unless the host is a newer Debian: the guest's glibc must be at least the host's.
  HAILO_CLIP_VM_SUITE=trixie
  if [ -r /etc/os-release ] && (. /etc/os-release && [ "${ID:-}" = debian ] && [ -n "${VERSION_CODENAME:-}" ]); then
    case $(. /etc/os-release && echo "$VERSION_CODENAME") in
    buster | bullseye | bookworm | trixie) ;;
    *) HAILO_CLIP_VM_SUITE=$(. /etc/os-release && echo "$VERSION_CODENAME") ;;
    esac
  fi
fi
suite=$HAILO_CLIP_VM_SUITE

# Where the rendered unit's placeholders land in the guest.
placeholder_bin=/nix/store/00000000000000000000000000000000-hailo-clip/bin/hailo-clip
guest_bin=/opt/hailo-clip/bin/hailo-clip

started=$SECONDS
phase() { printf '==> [%4ds] %s\n' $((SECONDS - started)) "$*"; }
summary=0
skip() {
  echo "SKIP: $*"
  echo "0 passed, 0 failed, 1 skipped"
  summary=1
  exit 0
}
abort() {
  echo "FAIL: $*"
  echo "0 passed, 1 failed"
  summary=1
  exit 1
}

[ "$(id -u)" = 0 ] || abort "needs root (mmdebstrap root mode, an image with root-owned files, useradd --root)"

work=$(mktemp -d "${TMPDIR:-/tmp}/hailo-clip-vm.XXXXXX")
qemu_pid=
cleanup() {
  local rc=$?
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  # A step that failed under set -e still owes the summary line.
  if [ "$summary" = 0 ] && [ "$rc" != 0 ]; then
    echo "FAIL: run.sh stopped with exit $rc before the guest's results (see above)"
    echo "0 passed, 1 failed"
  fi
  if [ "${HAILO_CLIP_VM_KEEP:-0}" = 1 ]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# --- 1. the unit under test, from the module evaluation (cheap, and decides SKIP before heavy work)
phase "render the unit from modules/hailo-clip.nix (tests/nix/render-unit.sh mock)"
rc=0
bash "$repo/tests/nix/render-unit.sh" "$work/render" mock || rc=$?
case $rc in
0) ;;
77) skip "tests/nix/render-unit.sh cannot evaluate the module here (nixpkgs' lib not found; its message is above). Not substituting a hand-written unit." ;;
*) abort "tests/nix/render-unit.sh failed (exit $rc)" ;;
esac
unit=$work/render/hailo-clip.service
json=$work/render/hailo-clip.json
grep -q "^ExecStart=$placeholder_bin\( \|$\)" "$unit" ||
  abort "ExecStart in the rendered unit does not start with $placeholder_bin (render-unit.sh contract changed?)"
xdg=$(sed -n 's/^Environment="\{0,1\}XDG_CONFIG_HOME=\([^"]*\)"\{0,1\}$/\1/p' "$unit")
[ -n "$xdg" ] || abort "the rendered unit sets no XDG_CONFIG_HOME; cannot tell where its config goes"
svc_user=$(sed -n 's/^User=//p' "$unit")
svc_group=$(sed -n 's/^Group=//p' "$unit")
[ -n "$svc_user" ] && [ -n "$svc_group" ] || abort "the rendered unit has no static User=/Group="

# --- 2. host tools
need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v useradd >/dev/null || need+=(passwd)
if [ ${#need[@]} -gt 0 ]; then
  phase "apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- 3. the binary
if [ -n "${HAILO_CLIP_BIN:-}" ]; then
  bin=$HAILO_CLIP_BIN
else
  profile=${HAILO_CLIP_VM_PROFILE:-release}
  phase "cargo build --profile $profile"
  (cd "$repo" && cargo build --profile "$profile" --locked --bin hailo-clip)
  dir=$profile
  [ "$profile" = dev ] && dir=debug
  bin=${CARGO_TARGET_DIR:-$repo/target}/$dir/hailo-clip
fi
[ -x "$bin" ] || abort "no binary at $bin"

# --- 4. the guest root filesystem (cached)
phase "Debian $suite root filesystem (cache: $cache)"
tarball=$(bash "$here/rootfs.sh" "$suite" "$cache")

phase "assemble the guest image"
root=$work/root
mkdir -p "$root"
tar -xpf "$tarball" -C "$root" --numeric-owner
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
[ -f "$kernel" ] && [ -f "$initrd" ] || abort "no kernel/initrd in the rootfs"

install -D -m 0755 "$bin" "$root$guest_bin"
sed "s#$placeholder_bin#$guest_bin#g" "$unit" >"$root/etc/systemd/system/hailo-clip.service"
install -D -m 0644 "$json" "$root$xdg/hailo-clip/hailo-clip.json"
# NixOS creates users.users.hailo-clip (isSystemUser, group hailo-clip, home /var/lib/hailo-clip,
# not created) at activation, before any unit starts; useradd --system is the Debian equivalent.
groupadd --root "$root" --system "$svc_group"
useradd --root "$root" --system --gid "$svc_group" --home-dir /var/lib/hailo-clip --no-create-home \
  --shell /usr/sbin/nologin --comment "hailo-clip service user" "$svc_user"
# [Install] WantedBy= is what NixOS's wantedBy turns into: a .wants symlink.
for t in $(sed -n 's/^WantedBy=//p' "$unit"); do
  mkdir -p "$root/etc/systemd/system/$t.wants"
  ln -sf ../hailo-clip.service "$root/etc/systemd/system/$t.wants/hailo-clip.service"
done

# The in-flight-stop check needs a slow mock: the rendered settings plus a 6 s image latency,
# as a second XDG_CONFIG_HOME the guest selects with a drop-in.
testconf=$root/etc/hailo-clip-vm-test
install -D -m 0644 "$here/guest/pixel.png.b64" "$testconf/pixel.png.b64"
mkdir -p "$testconf/slow/hailo-clip"
nix-instantiate --eval --strict --json --argstr json "$json" --expr '{ json }:
  let c = builtins.fromJSON (builtins.readFile json);
      b = c.backend or { }; m = b.mock or { }; l = m.latency or { };
  in c // { backend = b // { mock = m // { latency = l // { image_fixed_ms = 6000; }; }; }; }' \
  >"$testconf/slow/hailo-clip/hailo-clip.json"
install -D -m 0755 "$here/guest/hailo-clip-vm-test.sh" "$root/usr/local/lib/hailo-clip-vm-test/hailo-clip-vm-test.sh"
install -m 0644 "$here/guest/hailo-clip-vm-test.service" "$root/etc/systemd/system/"
ln -sf ../hailo-clip-vm-test.service "$root/etc/systemd/system/multi-user.target.wants/"
# Periodic jobs only slow an emulated boot down.
for t in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$t"
done
echo hailo-clip-vm >"$root/etc/hostname"

guest_image "$root" 512

# --- 5. boot; the test unit powers the guest off when done
guest_boot

# --- 6. results
guest_results "$cache/last-run"
phase "done"
echo "$passed passed, $failed failed"
summary=1
[ "$failed" -eq 0 ]
