#!/bin/bash
# Runs inside the Debian guest at boot (hailo-clip-vm-test.service), against the hailo-clip unit
# rendered from modules/hailo-clip.nix. Writes one "PASS|FAIL <check>" line per check to the
# results port (/dev/ttyS1, a file on the host) and "DONE" last; the host counts them.
# Diagnostics (journal excerpts) go to the same port prefixed with "#".
set -u

svc=hailo-clip.service
results=/dev/ttyS1
conf=/etc/hailo-clip-vm-test
png=$(cat "$conf/pixel.png.b64")
stty -F "$results" raw -echo 2>/dev/null

out() { printf '%s\n' "$*" >"$results"; }
pass() { out "PASS $*"; }
fail() { out "FAIL $*"; }
check() { # check NAME COND_RESULT DETAIL
  if [ "$2" = 0 ]; then pass "$1${3:+ ($3)}"; else fail "$1${3:+ ($3)}"; fi
}
show() { systemctl show -p "$1" --value "$svc"; }
diag() { "$@" 2>&1 | sed 's/^/# /' >"$results"; }

# The rendered JSON is compact and has server.port (the module sets it).
port=$(grep -o '"port":[0-9]*' /etc/xdg/hailo-clip/hailo-clip.json | head -n1 | cut -d: -f2)
port=${port:-5000}
base=http://127.0.0.1:$port

http_code() { # http_code PATH [curl args...]: prints the status, 000 if no answer
  local path=$1
  shift
  rm -f /tmp/body
  curl -s -o /tmp/body -w '%{http_code}' --max-time 60 "$@" "$base$path" || true
}
classify() {
  http_code /v1/classify -H 'content-type: application/json' \
    -d "{\"image\":\"$png\",\"labels\":[\"a cat\",\"a dog\"]}"
}
wait_until() { # wait_until SECONDS CMD...: polls CMD every 0.5 s
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.5
  done
}
is_active() { [ "$(systemctl is-active "$svc")" = active ]; }
# An ESTABLISHED (state 01) TCP connection to the service port in the root netns.
conn_established() {
  local hexport
  hexport=$(printf '%04X' "$port")
  awk -v p=":$hexport" '$3 ~ p"$" && $4 == "01" {f=1} END {exit !f}' /proc/net/tcp /proc/net/tcp6
}

out "# guest: $(uname -r), $(systemctl --version | head -n1)"

# --- boot: the unit is enabled (WantedBy=multi-user.target); this test is ordered after it.
wait_until 180 is_active
check "active after boot (enabled via WantedBy=multi-user.target)" $? "ActiveState=$(show ActiveState) SubState=$(show SubState)"
t=$(show Type)
[ "$t" = notify ]
check "unit is Type=notify" $? "Type=$t NotifyAccess=$(show NotifyAccess)"

# --- identity
u=$(show User)
[ "$u" = hailo-clip ]
check "systemctl show User=hailo-clip" $? "User=$u Group=$(show Group)"
pid=$(show MainPID)
uid=$(id -u hailo-clip)
gid=$(getent group hailo-clip | cut -d: -f3)
read -r _ ruid euid suid fsuid < <(grep '^Uid:' "/proc/$pid/status")
read -r _ rgid egid sgid fsgid < <(grep '^Gid:' "/proc/$pid/status")
[ "$ruid $euid $suid $fsuid" = "$uid $uid $uid $uid" ] && [ "$rgid $egid $sgid $fsgid" = "$gid $gid $gid $gid" ]
check "MainPID $pid runs as hailo-clip" $? "/proc Uid: $ruid $euid $suid $fsuid Gid: $rgid $egid $sgid $fsgid; hailo-clip is $uid:$gid"
comm=$(cat "/proc/$pid/comm")
[ "$comm" = hailo-clip ]
check "MainPID is the hailo-clip binary" $? "comm=$comm"

# --- StateDirectory=hailo-clip, StateDirectoryMode=0700
st=$(stat -c '%U:%G %a' /var/lib/hailo-clip 2>&1)
[ "$st" = "hailo-clip:hailo-clip 700" ]
check "StateDirectory /var/lib/hailo-clip owned by hailo-clip, mode 700" $? "$st"

# --- resource limits reach the cgroup. Expected values come from the installed unit file itself.
unitfile=$(show FragmentPath)
cg=/sys/fs/cgroup$(show ControlGroup)
mm=$(sed -n 's/^MemoryMax=//p' "$unitfile" | tail -n1)
want_mem=$(numfmt --from=iec "$mm" 2>/dev/null)
got_mem=$(cat "$cg/memory.max" 2>&1)
[ -n "$mm" ] && [ "$got_mem" = "$want_mem" ]
check "memory.max matches MemoryMax=$mm" $? "$cg/memory.max=$got_mem"
cq=$(sed -n 's/^CPUQuota=\([0-9]*\)%$/\1/p' "$unitfile" | tail -n1)
got_cpu=$(cat "$cg/cpu.max" 2>&1)
# systemd writes the quota per 100 ms period: N% -> N*1000 us.
[ -n "$cq" ] && [ "$got_cpu" = "$((cq * 1000)) 100000" ]
check "cpu.max matches CPUQuota=$cq%" $? "$cg/cpu.max=$got_cpu"

# --- HTTP
c=$(http_code /health)
[ "$c" = 200 ]
check "GET /health 200" $? "got $c: $(head -c 200 /tmp/body)"
c=$(classify)
body=$(head -c 400 /tmp/body)
[ "$c" = 200 ] && grep -q '"a cat"' /tmp/body && grep -q '"backend":"mock"' /tmp/body
check "POST /v1/classify round-trip (8x8 PNG, 2 labels)" $? "got $c: $body"

# --- readiness: Type=notify, so `systemctl start` returns only after READY=1.
timeout 60 systemctl stop "$svc"
t0=$SECONDS
timeout 180 systemctl start "$svc"
rc=$?
st_now=$(systemctl is-active "$svc")
c=$(http_code /health --max-time 5)
[ "$rc" = 0 ] && [ "$st_now" = active ] && [ "$(show SubState)" = running ]
check "systemctl start returns with the unit active" $? "rc=$rc is-active=$st_now SubState=$(show SubState) after $((SECONDS - t0)) s"
[ "$c" = 200 ]
check "GET /health 200 at once after start returned (READY=1 means serving)" $? "got $c"

# --- the text cache survives the restart (cache.persist, on in the module): the stop above
# wrote the two labels of the classify round-trip, the start reads them back.
cache_file=/var/lib/hailo-clip/cache/text-clip-resnet-50x4.bin
cache_loaded() { curl -s --max-time 5 "$base/info" | grep -q '"loaded":2'; }
wait_until 30 cache_loaded
check "text cache kept across the restart" $? "$(ls -l "$cache_file" 2>&1 | cut -c1-120); $(curl -s --max-time 5 "$base/info" | grep -o '"persist":{[^}]*}')"

# --- crash recovery: Restart=always
n0=$(show NRestarts)
pid0=$(show MainPID)
kill -9 "$pid0"
restarted() { is_active && p=$(show MainPID) && [ "$p" != 0 ] && [ "$p" != "$pid0" ]; }
wait_until 120 restarted
rc=$?
n1=$(show NRestarts)
pid1=$(show MainPID)
check "restarted after kill -9 of MainPID" $rc "MainPID $pid0 -> $pid1, ActiveState=$(show ActiveState)"
[ "$n1" = $((n0 + 1)) ]
check "NRestarts incremented" $? "NRestarts $n0 -> $n1"
c=$(http_code /health)
[ "$c" = 200 ]
check "GET /health 200 after restart" $? "got $c"

# --- clean stop: SIGTERM drains and exits 0
timeout 90 systemctl stop "$svc"
s=$(systemctl is-active "$svc")
res=$(show Result)
code=$(show ExecMainCode)
status=$(show ExecMainStatus)
# ExecMainCode 1 is CLD_EXITED (a normal exit, not a signal).
[ "$s" = inactive ] && [ "$res" = success ] && [ "$code" = 1 ] && [ "$status" = 0 ]
check "systemctl stop: inactive, exit 0, Result=success" $? "is-active=$s Result=$res ExecMainCode=$code ExecMainStatus=$status"

# --- stop while a request is in flight: slow mock latency via a runtime drop-in pointing
# XDG_CONFIG_HOME at a second config (the host derived it from the rendered one).
mkdir -p /run/systemd/system/$svc.d
printf '[Service]\nEnvironment=XDG_CONFIG_HOME=%s/slow\n' "$conf" >/run/systemd/system/$svc.d/50-slow.conf
systemctl daemon-reload
timeout 180 systemctl start "$svc"
check "start with the slow-mock drop-in" $? "$(grep -o '"latency":{[^}]*}' "$conf/slow/hailo-clip/hailo-clip.json")"
(classify >/tmp/slow.code) &
req=$!
wait_until 20 conn_established
rc=$?
# ESTABLISHED can still mean "in the accept backlog"; an idle server reads the request well
# within 2 s, and the 6 s mock latency keeps it unanswered when the stop begins.
sleep 2
kill -0 "$req" 2>/dev/null
running=$?
[ "$rc" = 0 ] && [ "$running" = 0 ]
check "slow classify is in flight when the stop begins" $? "connection established=$([ $rc = 0 ] && echo yes || echo no), client running=$([ $running = 0 ] && echo yes || echo no)"
t0=$(date +%s.%N)
timeout 90 systemctl stop "$svc"
stop_rc=$?
t1=$(date +%s.%N)
wait "$req"
c=$(cat /tmp/slow.code)
body=$(head -c 300 /tmp/body)
[ "$c" = 200 ] && grep -q '"a cat"' /tmp/body
check "in-flight request answered during stop" $? "HTTP $c: $body"
res=$(show Result)
status=$(show ExecMainStatus)
[ "$stop_rc" = 0 ] && [ "$res" = success ] && [ "$status" = 0 ]
check "stop with a request in flight: exit 0, Result=success" $? "stop took $(echo "$t1 - $t0" | awk '{print $1 - $3}') s (rc=$stop_rc) Result=$res ExecMainStatus=$status"
rm -f /run/systemd/system/$svc.d/50-slow.conf
systemctl daemon-reload

out "# journal of $svc (last 40 lines):"
diag journalctl -u "$svc" -n 40 --no-pager -o short-monotonic
out DONE
