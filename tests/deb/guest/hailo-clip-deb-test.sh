#!/bin/bash
# Runs inside the Debian trixie guest at boot (hailo-clip-deb-test.service): installs, upgrades,
# reconfigures and purges the hailo-clip .deb under the real systemd, and drives
# packaging/install.sh through its good and bad paths. Writes one "PASS|FAIL <check>" line per
# check to the results port (/dev/ttyS1, a file on the host) and "DONE" last.
set -u
d=/opt/hailo-clip-deb-test
results=/dev/ttyS1
svc=hailo-clip.service
yaml=/etc/hailo/hailo-clip.yaml
json=/etc/xdg/hailo-clip/hailo-clip.json
v1=$d/hailo-clip_0.1.0-1_amd64.deb
v2=$d/hailo-clip_0.1.1-1_amd64.deb
png=$(cat "$d/pixel.png.b64")
stty -F "$results" raw -echo 2>/dev/null
export DEBIAN_FRONTEND=noninteractive

out() { printf '%s\n' "$*" >"$results"; }
phase() { out "# [$((SECONDS - t0))s] $*"; }
t0=$SECONDS
check() { # check NAME RC DETAIL
  if [ "$2" = 0 ]; then out "PASS $1${3:+ ($3)}"; else out "FAIL $1${3:+ ($3)}"; fi
}
diag() { "$@" 2>&1 | tail -n 40 | sed 's/^/# /' >"$results"; }
show() { systemctl show -p "$1" --value "$svc"; }
code() { # code PORT PATH [curl args]
  local port=$1 path=$2
  shift 2
  curl -s -o /tmp/body -w '%{http_code}' --max-time 60 "$@" "http://127.0.0.1:$port$path" || true
}
wait_until() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.5
  done
}
healthy() { [ "$(code 5000 /health)" = 200 ]; }
active_and_healthy() { [ "$(systemctl is-active "$svc")" = active ] && healthy; }
apt_install() { # apt_install ARGS...: keeps an existing config, as install.sh does
  apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" >/tmp/apt.log 2>&1
}
# expect_fail NAME PATTERN CMD...: CMD exits non-zero and its output matches PATTERN
expect_fail() {
  local name=$1 pat=$2 rc=0
  shift 2
  "$@" >/tmp/cmd.log 2>&1 || rc=$?
  if [ "$rc" != 0 ] && grep -Eq "$pat" /tmp/cmd.log; then
    check "$name" 0 "exit $rc: $(grep -E "$pat" /tmp/cmd.log | head -n 1)"
  else
    check "$name" 1 "exit $rc, expected /$pat/"
    diag cat /tmp/cmd.log
  fi
}
unchanged_service() { # unchanged_service NAME PID: still the same process, still healthy
  local pid
  pid=$(show MainPID)
  [ "$pid" = "$2" ] && active_and_healthy
  check "$1: previous install still running" $? "MainPID $2 -> $pid, /health $(code 5000 /health)"
}
mock_yaml() { # mock_yaml [EXTRA YAML LINES...]
  {
    echo "# the user's config"
    echo "server: {host: 127.0.0.1, port: 5000}"
    echo "backend: {type: mock}"
    printf '%s\n' "$@"
  } >"$yaml"
}

out "# guest: $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -r), $(systemctl --version | head -n1)"

# --- install.sh refuses bad input before anything is installed
phase "install.sh refuses bad input"
expect_fail "install.sh as a normal user" "must run as root" setpriv --reuid=65534 --regid=65534 --clear-groups bash $d/install.sh $v1
printf 'ID=fedora\nPRETTY_NAME="Fedora Linux 41"\n' >/tmp/os-release
expect_fail "install.sh on a non-Debian OS" "is for Debian and Raspberry Pi OS" env HAILO_CLIP_OS_RELEASE=/tmp/os-release bash $d/install.sh $v1
expect_fail "install.sh with an arm64 package on amd64" "built for arm64, this system is amd64" bash $d/install.sh $d/hailo-clip_0.1.0-1_arm64.deb
expect_fail "install.sh, hailo build without the Hailo packages" "sudo apt install dkms hailo-h10-all" bash $d/install.sh $d/hailo-clip-hailo_0.1.0-1_amd64.deb
dpkg -i $d/h10-hailort_5.2.0-1_amd64.deb >/dev/null 2>&1
expect_fail "install.sh, hailo build with another HailoRT version" "h10-hailort is 5.2.0-1 but this hailo-clip was built against libhailort 5.1.1" bash $d/install.sh $d/hailo-clip-hailo_0.1.0-1_amd64.deb
grep -q 'sudo apt install h10-hailort=5.1.1' /tmp/cmd.log
check "version mismatch names the fix" $? "$(grep 'fix:' /tmp/cmd.log | head -n 1)"
dpkg --purge h10-hailort >/dev/null 2>&1
check "nothing installed by the refused runs" "$(dpkg-query -W hailo-clip >/dev/null 2>&1 && echo 1 || echo 0)"

# --- a device node owned by a group, as the Hailo udev rule would make it
groupadd --system hailo
mknod -m 0660 /dev/hailo0 c 1 3 && chgrp hailo /dev/hailo0

# --- apt install with the user's config already in place
phase "apt install"
mkdir -p /etc/hailo
mock_yaml
apt_install "$v1"
rc=$?
check "apt install ./hailo-clip_0.1.0-1_amd64.deb" $rc "$(grep -c . /tmp/apt.log) lines of apt output"
[ "$rc" = 0 ] || diag cat /tmp/apt.log
wait_until 120 active_and_healthy
check "service active and /health 200 after install" $? "ActiveState=$(show ActiveState) /health $(code 5000 /health)"
[ "$(systemctl is-enabled "$svc")" = enabled ]
check "unit enabled" $? "$(systemctl is-enabled "$svc")"
c=$(code 5000 /v1/classify -H 'content-type: application/json' -d "{\"image\":\"$png\",\"labels\":[\"a cat\",\"a dog\"]}")
[ "$c" = 200 ] && grep -q '"backend":"mock"' /tmp/body
check "classify round trip" $? "HTTP $c"
for kv in Type=notify User=hailo-clip Group=hailo-clip Restart=always MemoryMax=3221225472 \
  CPUQuotaPerSecUSec=800ms TimeoutStartUSec=2min LimitNOFILE=65536 StateDirectory=hailo-clip \
  "Environment=XDG_CONFIG_HOME=/etc/xdg XDG_DATA_HOME=/var/lib" FragmentPath=/usr/lib/systemd/system/hailo-clip.service; do
  v=$(show "${kv%%=*}")
  [ "$v" = "${kv#*=}" ]
  check "systemctl show $kv" $? "got: $v"
done
pid=$(show MainPID)
uid=$(id -u hailo-clip)
[ "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")" = "$uid" ] && [ "$(cat "/proc/$pid/comm")" = hailo-clip ]
check "MainPID runs /usr/bin/hailo-clip as hailo-clip" $? "uid $(awk '/^Uid:/ {print $2}' "/proc/$pid/status"), hailo-clip is $uid"
st=$(stat -c '%U:%G %a' /var/lib/hailo-clip 2>&1)
[ "$st" = "hailo-clip:hailo-clip 700" ]
check "StateDirectory /var/lib/hailo-clip" $? "$st"
pw=$(getent passwd hailo-clip)
[ "$(echo "$pw" | cut -d: -f6,7)" = /var/lib/hailo-clip:/usr/sbin/nologin ] && [ "$uid" -lt 1000 ]
check "system user hailo-clip (systemd-sysusers)" $? "$pw"
id -nG hailo-clip | grep -qw hailo
check "hailo-clip joined the group owning /dev/hailo0" $? "groups: $(id -nG hailo-clip)"
grep -q '"type": "mock"' "$json" && grep -q '"prompt_template": "a photo of a {}."' "$json"
check "config rendered to $json" $? "$(grep -c . "$json") lines"
[ "$(stat -c %a "$json")" = 644 ]
check "rendered config readable (0644)" $?
[ "$(show IPAddressDeny)" != "" ]
check "loopback host: localhost-only IP filter kept" $? "IPAddressDeny=$(show IPAddressDeny)"

# --- the YAML edited, a drop-in added; reinstall the same version
phase "reinstall the same version"
sed -i 's/^backend: {type: mock}$/backend: {type: mock}\nclip: {prompt_template: "a picture of a {}."}/' "$yaml"
# The guest's dpkg skips /usr/share/doc (a smaller rootfs), so the example comes from the repository.
install -D -m 0644 $d/override.conf.example /etc/systemd/system/hailo-clip.service.d/override.conf
pid=$(show MainPID)
apt_install --reinstall "$v1"
check "apt install --reinstall (same version)" $?
wait_until 120 active_and_healthy
grep -q 'a picture of a' "$yaml" && grep -q '"prompt_template": "a picture of a {}."' "$json" && [ "$(show MainPID)" != "$pid" ]
check "edit kept after reinstall and applied (restarted)" $? "MainPID $pid -> $(show MainPID), /health $(code 5000 /health)"
[ "$(show MemoryMax)" = 2147483648 ] && [ "$(show CPUQuotaPerSecUSec)" = 3s ]
check "drop-in example applied (MemoryMax=2G CPUQuota=300%)" $? "MemoryMax=$(show MemoryMax) CPUQuotaPerSecUSec=$(show CPUQuotaPerSecUSec)"

# --- upgrade to a newer version
phase "upgrade"
pid=$(show MainPID)
apt_install "$v2"
check "apt install newer 0.1.1-1" $? "$(dpkg-query -W -f='${Version}' hailo-clip)"
wait_until 120 active_and_healthy
[ "$(dpkg-query -W -f='${Version}' hailo-clip)" = 0.1.1-1 ] && grep -q 'a picture of a' "$yaml" &&
  grep -q '"prompt_template": "a picture of a {}."' "$json" && [ "$(show MainPID)" != "$pid" ]
check "edit kept after upgrade and applied" $? "version $(dpkg-query -W -f='${Version}' hailo-clip), /health $(code 5000 /health)"
[ "$(show MemoryMax)" = 2147483648 ]
check "drop-in kept across upgrade" $? "MemoryMax=$(show MemoryMax)"
rm -rf /etc/systemd/system/hailo-clip.service.d/override.conf

# --- install.sh on the installed system: an edit is applied, the second run changes nothing
phase "install.sh twice"
sed -i 's/host: 127.0.0.1/host: 0.0.0.0/' "$yaml"
bash $d/install.sh $v2 >/tmp/run1.log 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q 'applied /etc/hailo/hailo-clip.yaml' /tmp/run1.log && grep -q 'restarted hailo-clip.service' /tmp/run1.log
check "install.sh applies an edited YAML and restarts" $? "exit $rc: $(tail -n 1 /tmp/run1.log)"
[ "$rc" = 0 ] || diag cat /tmp/run1.log
[ -z "$(show IPAddressDeny)" ] && [ -f /etc/systemd/system/hailo-clip.service.d/50-hailo-clip-listen.conf ]
check "host 0.0.0.0: the localhost-only IP filter lifted by a drop-in" $? "IPAddressDeny='$(show IPAddressDeny)'"
pid=$(show MainPID)
bash $d/install.sh $v2 >/tmp/run2.log 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q '^install.sh: no change:' /tmp/run2.log && [ "$(show MainPID)" = "$pid" ]
check "install.sh second run: no change" $? "exit $rc: $(tail -n 1 /tmp/run2.log)"
[ "$rc" = 0 ] || diag cat /tmp/run2.log

# --- bad input with a working install: each refused, the running service untouched
phase "install.sh bad input, install running"
cp "$yaml" /tmp/good.yaml
cp "$json" /tmp/good.json
pid=$(show MainPID)
printf 'server: [port\n' >"$yaml"
expect_fail "install.sh with an invalid YAML" "hailo-clip.yaml is invalid" bash $d/install.sh $v2
unchanged_service "invalid YAML" "$pid"
expect_fail "hailo-clip-apply-config with an invalid YAML" "is invalid, nothing changed" hailo-clip-apply-config
cmp -s "$json" /tmp/good.json
check "invalid YAML: rendered config untouched" $?

cp /tmp/good.yaml "$yaml"
sed -i 's/port: 5000/port: 5001/' "$yaml"
printf 'server: {host: 127.0.0.1, port: 5001}\nbackend: {type: mock}\n' >/tmp/other.yaml
/usr/bin/hailo-clip serve --config /tmp/other.yaml >/tmp/other.log 2>&1 &
other=$!
wait_until 60 bash -c '[ "$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:5001/health)" = 200 ]'
expect_fail "install.sh with the port taken by another program" "port 5001 \(server.port\) is in use by PID $other" bash $d/install.sh $v2
unchanged_service "port taken" "$pid"
kill "$other"
wait "$other" 2>/dev/null

cp /tmp/good.yaml "$yaml"
sed -i 's/^backend: {type: mock}$/backend: {type: onnx, onnx: {library_path: \/opt\/missing\/libonnxruntime.so}}/' "$yaml"
expect_fail "install.sh when hailo-clip doctor fails (runtime library missing)" "doctor: FAIL onnxruntime" bash $d/install.sh $v2
grep -q 'fix: install ONNX Runtime' /tmp/cmd.log
check "doctor failure names the fix" $? "$(grep 'fix:' /tmp/cmd.log | tail -n 1)"
unchanged_service "doctor failure" "$pid"

cp /tmp/good.yaml "$yaml"
bash $d/install.sh $v2 >/tmp/run3.log 2>&1
grep -q '^install.sh: no change:' /tmp/run3.log && [ "$(show MainPID)" = "$pid" ]
check "install.sh after the refused runs: still no change" $? "$(tail -n 1 /tmp/run3.log)"

# --- purge removes what the package created
phase "apt purge"
apt-get purge -y -q hailo-clip >/tmp/apt.log 2>&1
check "apt purge hailo-clip" $?
left=()
[ -e /usr/lib/systemd/system/hailo-clip.service ] && left+=(unit)
[ "$(systemctl show -p LoadState --value "$svc")" = not-found ] || left+=("LoadState=$(systemctl show -p LoadState --value "$svc")")
getent passwd hailo-clip >/dev/null && left+=(user)
getent group hailo-clip >/dev/null && left+=(group)
[ -e "$json" ] && left+=("$json")
[ -e /etc/xdg/hailo-clip ] && left+=(/etc/xdg/hailo-clip)
[ -e "$yaml" ] && left+=("$yaml")
[ -e /var/lib/hailo-clip ] && left+=(/var/lib/hailo-clip)
[ -e /etc/systemd/system/hailo-clip.service.d ] && left+=(drop-in dir)
[ -e /etc/systemd/system/multi-user.target.wants/hailo-clip.service ] && left+=(wants symlink)
[ -e /usr/bin/hailo-clip ] && left+=(binary)
healthy && left+=("something still answers on :5000")
[ ${#left[@]} = 0 ]
check "purge: unit, user, group, rendered config, state gone" $? "left: ${left[*]:-nothing}"

# --- install.sh from nothing (the user's config written first), then again
phase "install.sh on a clean system"
mkdir -p /etc/hailo
mock_yaml
bash $d/install.sh $v2 >/tmp/run4.log 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q 'installed hailo-clip 0.1.1-1' /tmp/run4.log && active_and_healthy && grep -q '# the user' "$yaml"
check "install.sh on a clean system: installed, healthy, config kept" $? "exit $rc: $(tail -n 1 /tmp/run4.log)"
diag cat /tmp/run4.log
bash $d/install.sh $v2 >/tmp/run5.log 2>&1
grep -q '^install.sh: no change:' /tmp/run5.log
check "install.sh second run on it: no change" $? "$(tail -n 1 /tmp/run5.log)"
diag cat /tmp/run5.log
# The acceptance test of the Pi, its Raspberry Pi OS path, against this mock-backed install.
EXPECT_BACKEND=mock SKIP_DOCTOR=1 IMAGE=$d/cat.jpg REQUESTS=8 CONCURRENCY=4 \
  bash $d/on-device.sh >/tmp/ondev.log 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q '^PASS package hailo-clip 0.1.1-1 installed' /tmp/ondev.log &&
  grep -q '^PASS config rendered to /etc/xdg/hailo-clip/hailo-clip.json' /tmp/ondev.log &&
  grep -q '^PASS the service runs as hailo-clip' /tmp/ondev.log
check "tests/hailo/on-device.sh on the package install (Raspberry Pi OS path)" $? "exit $rc: $(tail -n 1 /tmp/ondev.log)"
diag cat /tmp/ondev.log
apt-get purge -y -q hailo-clip >/dev/null 2>&1
! getent passwd hailo-clip >/dev/null && [ ! -e "$json" ]
check "purge after install.sh" $?

phase "done"
out DONE
