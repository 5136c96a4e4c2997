# The guest harness shared by tests/vm/run.sh and tests/deb/vm.sh (sourced): the root
# filesystem image and the qemu boot. The caller defines `phase`, sets work, kernel, initrd and
# guest_timeout, and kills "$qemu_pid" in its exit trap.

# Packs directory $1 into $work/root.img with $2 MB to spare, beside the kernel and initrd; the
# directory is removed (its copy is in the image).
guest_image() {
  local root=$1 spare_mb=$2
  local size_mb=$(($(du -sm "$root" | cut -f1) + spare_mb))
  mkfs.ext4 -q -F -L root -d "$root" "$work/root.img" "${size_mb}M"
  cp "$kernel" "$work/vmlinuz"
  cp "$initrd" "$work/initrd.img"
  rm -rf "$root"
}

# Boots the image until the test unit powers the guest off (or the timeout); the console goes to
# $work/console.log, the test's own lines to $work/results.log; sets qrc to qemu's exit code.
guest_boot() {
  phase "boot the guest (qemu tcg, timeout ${guest_timeout}s)"
  local started=$SECONDS
  : >"$work/results.log"
  timeout --kill-after=10 "$guest_timeout" qemu-system-x86_64 \
    -accel tcg -cpu max -m 1024 -smp 2 \
    -nodefaults -display none -no-reboot -monitor none \
    -kernel "$work/vmlinuz" -initrd "$work/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 panic=1 net.ifnames=0 systemd.show_status=1" \
    -drive "file=$work/root.img,format=raw,if=virtio" \
    -serial "file:$work/console.log" -serial "file:$work/results.log" &
  qemu_pid=$!
  qrc=0
  wait "$qemu_pid" || qrc=$?
  qemu_pid=
  phase "guest finished after $((SECONDS - started)) s (qemu exit $qrc)"
}
