# The guest harness shared by tests/vm/run.sh and tests/deb/vm.sh (sourced): the root
# filesystem image, the qemu boot and reading the results. The caller defines `phase`, sets
# work, kernel, initrd and guest_timeout, and kills "$qemu_pid" in its exit trap.

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

# Reads $work/results.log after the boot: prints the PASS/FAIL lines (and the guest's phase
# lines), counts them, fails a run without the DONE marker, and on any failure prints the
# guest's diagnostics and the end of its console; logs are kept in $1. Sets passed and failed.
guest_results() {
  local logdir=$1 line done_seen=0
  mkdir -p "$logdir"
  cp "$work/console.log" "$work/results.log" "$logdir/" 2>/dev/null || true
  passed=0
  failed=0
  while IFS= read -r line; do
    line=${line%$'\r'}
    case $line in
    PASS\ *) passed=$((passed + 1)) && echo "$line" ;;
    FAIL\ *) failed=$((failed + 1)) && echo "$line" ;;
    DONE) done_seen=1 ;;
    "# guest:"* | "# ["*) echo "${line#\# }" ;;
    "#"*) [ "${HAILO_CLIP_VM_VERBOSE:-0}" = 1 ] && echo "$line" ;;
    esac
  done <"$work/results.log"
  if [ "$done_seen" = 0 ]; then
    echo "FAIL guest did not finish the test (qemu exit $qrc; 124 = timeout)"
    failed=$((failed + 1))
  fi
  if [ "$failed" -gt 0 ]; then
    echo "--- guest diagnostics (results port) ---"
    grep -a '^#' "$work/results.log" | tr -d '\r' || true
    echo "--- guest console, last 60 lines (full: $logdir/console.log) ---"
    tail -n 60 "$work/console.log" | tr -d '\r'
  fi
  return 0
}
