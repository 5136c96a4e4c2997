#!/usr/bin/env bash
# Acceptance test on a real Raspberry Pi 5 + Hailo-10H, against the running service.
#   tests/hailo/on-device.sh [BASE_URL]        (default http://127.0.0.1:5000)
# Environment:
#   HAILO_CLIP        the hailo-clip binary (default: hailo-clip on PATH)
#   HAILO_CLIP_CONFIG config for `hailo-clip doctor` (default: its own lookup)
#   API_KEY_FILE      bearer token file when server.api_key_file is set
#   REQUESTS=64 CONCURRENCY=8   the throughput run
#   SKIP_DOCTOR=1     skip step 1 (e.g. when testing the script against a mock service)
#   EXPECT_BACKEND=mock  test the script itself against the mock backend (the package guest test):
#                     the backend check expects it, the ranking and version checks are skipped
#   IMAGE             the photo to classify (default tests/fixtures/images/cat.jpg)
# Steps: on Raspberry Pi OS (the Debian package installed), the package, its service and user, the
# rendered config (the default for doctor and for the API key) and the h10-hailort version;
# doctor must pass (a busy device is fine while the service runs); /health must turn 200;
# /info must name the hailo backend and its versions (on Raspberry Pi OS each equal to h10-hailort's);
# the photo must rank "cat" first among ten labels; then REQUESTS classify calls, CONCURRENCY at a
# time, give img/s.
# Last line: "N passed, N failed"; exit status non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
base=${1:-http://127.0.0.1:5000}
bin=${HAILO_CLIP:-hailo-clip}
requests=${REQUESTS:-64}
concurrency=${CONCURRENCY:-8}
image=${IMAGE:-$repo/tests/fixtures/images/cat.jpg}
expect=${EXPECT_BACKEND:-hailo}
labels='["cat","dog","car","bird","horse","airplane","ship","truck","frog","deer"]'

passed=0 failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

for tool in curl base64; do
  command -v "$tool" >/dev/null || { fail "$tool not installed"; finish; }
done
# JSON field access with jq, or python3 when jq is missing.
json() {
  if command -v jq >/dev/null; then
    jq -r "$1"
  else
    python3 -c 'import json,sys
d=json.load(sys.stdin)
for k in sys.argv[1].lstrip(".").replace("[", ".").replace("]", "").split("."):
    if k == "": continue
    d = d[int(k)] if k.isdigit() else d.get(k)
print(d if not isinstance(d, (dict, list)) else json.dumps(d))' "$1"
  fi
}

# 0. Raspberry Pi OS: what the Debian package installed
hailort_pkg=
if command -v dpkg-query >/dev/null &&
  dpkg-query -W -f='${Status}' hailo-clip 2>/dev/null | grep -q 'install ok installed'; then
  echo "  Raspberry Pi OS / Debian: the hailo-clip package is installed"
  pass "package hailo-clip $(dpkg-query -W -f='${Version}' hailo-clip) installed"
  state=$(systemctl is-active hailo-clip 2>/dev/null)
  if [ "$state" = active ]; then pass "hailo-clip.service active"; else fail "hailo-clip.service is ${state:-unknown}, not active (journalctl -u hailo-clip)"; fi
  user=$(systemctl show -p User --value hailo-clip 2>/dev/null)
  if [ "$user" = hailo-clip ]; then pass "the service runs as hailo-clip"; else fail "the service runs as '${user}', not hailo-clip"; fi
  rendered=/etc/xdg/hailo-clip/hailo-clip.json
  if [ -r "$rendered" ]; then
    pass "config rendered to $rendered"
    : "${HAILO_CLIP_CONFIG:=$rendered}"
    key=$(json .server.api_key_file <"$rendered")
    if [ -z "${API_KEY_FILE:-}" ] && [ -n "$key" ] && [ "$key" != null ] && [ "$key" != None ]; then
      if [ -r "$key" ]; then API_KEY_FILE=$key; else echo "  $key (server.api_key_file) is not readable: run as root"; fi
    fi
  else
    fail "no $rendered (sudo dpkg-reconfigure hailo-clip, or sudo hailo-clip-apply-config)"
  fi
  if dpkg-query -W -f='${Depends}' hailo-clip | grep -q h10-hailort; then
    hailort_pkg=$(dpkg-query -W -f='${Version}' h10-hailort 2>/dev/null)
    if [ -n "$hailort_pkg" ]; then pass "h10-hailort $hailort_pkg installed"; else fail "h10-hailort is not installed (sudo apt install dkms hailo-h10-all)"; fi
  fi
fi

auth=()
if [ -n "${API_KEY_FILE:-}" ]; then
  auth=(-H "Authorization: Bearer $(tr -d '\n' <"$API_KEY_FILE")")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. doctor
if [ "${SKIP_DOCTOR:-0}" = 1 ]; then
  echo "SKIP doctor (SKIP_DOCTOR=1)"
elif out=$("$bin" doctor ${HAILO_CLIP_CONFIG:+--config "$HAILO_CLIP_CONFIG"} 2>&1); then
  echo "$out" | sed 's/^/  /'
  pass "doctor"
else
  echo "$out" | sed 's/^/  /'
  fail "doctor reported failures (fix the FAIL lines above)"
  finish
fi

# 2. health
ok=0
for _ in $(seq 1 120); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" = 200 ]; then
    ok=1
    break
  fi
  sleep 1
done
if [ $ok = 1 ]; then pass "/health is 200"; else fail "/health did not turn 200 within 120 s"; finish; fi

# 3. info
info=$(curl -sf "${auth[@]}" "$base/info") || { fail "/info"; finish; }
backend=$(echo "$info" | json .backend)
echo "  /info backend=$backend versions=$(echo "$info" | json .versions)"
case "$backend" in
  "$expect"*) pass "/info names backend $backend" ;;
  *) fail "/info backend is $backend, not $expect" ;;
esac
# Library, driver and firmware of one release (else HailoRT error 76), and that release the package's.
if [ -n "$hailort_pkg" ] && [ "$expect" = hailo ]; then
  want=$(echo "$hailort_pkg" | grep -o '^[0-9]*\.[0-9]*\.[0-9]*')
  for k in hailort hailo_driver hailo_firmware; do
    got=$(echo "$info" | json ".versions.$k")
    case "$got" in
      "$want"*) pass "$k $got matches h10-hailort $hailort_pkg" ;;
      *) fail "$k is $got but h10-hailort is $hailort_pkg (sudo apt install --reinstall h10-hailort h10-hailort-pcie-driver, then reboot)" ;;
    esac
  done
elif [ -n "$hailort_pkg" ]; then
  echo "SKIP versions against h10-hailort (EXPECT_BACKEND=$expect)"
fi

# 4. classify the cat
printf '{"image":"%s","labels":%s}' "$(base64 -w0 "$image")" "$labels" >"$work/body.json"
resp=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary "@$work/body.json" "$base/v1/classify") ||
  { fail "POST /v1/classify"; finish; }
top=$(echo "$resp" | json '.result[0].label')
score=$(echo "$resp" | json '.result[0].score')
ms=$(echo "$resp" | json '.inference_time_ms')
echo "  top label: $top (score $score, inference $ms ms)"
if [ "$expect" != hailo ]; then
  if [ -n "$top" ] && [ "$top" != null ] && [ "$top" != None ]; then pass "classify answered (top label $top; ranking not checked for $expect)"; else fail "classify gave no labels"; fi
elif [ "$top" = cat ]; then pass "cat.jpg ranks cat first"; else fail "cat.jpg ranks $top first"; fi

# 5. throughput
start=$(date +%s.%N)
seq 1 "$requests" | xargs -P "$concurrency" -I{} \
  curl -sf -o /dev/null -w '%{http_code}\n' "${auth[@]}" -H 'Content-Type: application/json' \
  --data-binary "@$work/body.json" "$base/v1/classify" >"$work/codes"
end=$(date +%s.%N)
good=$(grep -c '^200$' "$work/codes" || true)
rate=$(awk -v n="$good" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }')
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
echo "  throughput: $good/$requests requests OK in $secs s with $concurrency in parallel = $rate img/s"
if [ "$good" = "$requests" ]; then pass "throughput run ($rate img/s)"; else fail "$((requests - good)) of $requests requests failed"; fi
finish
