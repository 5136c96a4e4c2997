#!/usr/bin/env bash
# Contract tests against the live service with the mock backend: the official OpenAI client on
# /v1/embeddings, Immich's own request code (Node's FormData and fetch) on /predict and /ping,
# /openapi.json validated as OpenAPI 3.1, schemathesis against it, and the page at / in headless
# Chromium (HAILO_CLIP_SCREENSHOT=docs/try-page.png refreshes the README's screenshot).
# Usage: tests/contract/run.sh [path/to/hailo-clip]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/debug/hailo-clip}"
missing=()
while read -r cmd pkg; do
  case "$cmd" in '#'* | '') continue ;; esac
  command -v "$cmd" >/dev/null || missing+=("$pkg")
done <tests/contract/apt.txt
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "contract tests need these Debian packages: ${missing[*]}" >&2
    exit 1
  fi
fi
bash web/vendor.sh --check
venv=.cache/venv-contract
stamp="$venv/.requirements.sha256"
want="$(sha256sum tests/contract/requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r tests/contract/requirements.txt
  echo "$want" >"$stamp"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
work="$(mktemp -d)"
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
sed "s/port: 5000/port: $port/" config/mock.yaml >"$work/config.yaml"
"$bin" serve --config "$work/config.yaml" >"$work/server.log" 2>&1 &
pid=$!
export HAILO_CLIP_URL="http://127.0.0.1:$port"
for _ in $(seq 100); do
  curl -fsS "$HAILO_CLIP_URL/health" >/dev/null 2>&1 && break
  sleep 0.1
done

status=0
"$venv/bin/python" tests/contract/test_openai.py || status=1
node tests/contract/immich.mjs || status=1
"$venv/bin/python" tests/contract/check_openapi.py || status=1
# The page at / and /docs in headless Chromium (Debian's chromium; playwright-core from web/).
mkdir -p .cache/web
node web/browser-test.mjs "${HAILO_CLIP_SCREENSHOT:-.cache/web/try-page.png}" || status=1
# Schemathesis against the description: no 5xx, every status documented, every answer of the
# documented content type and schema. Bounded: 25 examples per operation, derandomized.
"$venv/bin/st" run "$HAILO_CLIP_URL/openapi.json" --experimental=openapi-3.1 \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --hypothesis-max-examples 25 --hypothesis-deadline None --hypothesis-derandomize \
  --request-timeout 10000 --no-color >"$work/schemathesis.log" 2>&1 || {
  cat "$work/schemathesis.log" >&2
  status=1
}
grep -E "passed|failed" "$work/schemathesis.log" | tail -n 1
# Client errors are the clients' business: the service must not have logged a server error.
if grep -q 'ERROR\|request failed' "$work/server.log"; then
  echo "the server logged an error:" >&2
  status=1
fi
if [ "$status" != 0 ]; then
  echo "--- server log" >&2
  cat "$work/server.log" >&2
fi
exit "$status"
