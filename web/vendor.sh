#!/usr/bin/env bash
# Installs web/'s pinned npm packages (into web/node_modules) and copies RapiDoc, served at
# /docs, into crates/http/assets. With --check, fails when the committed copy differs instead.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi
src=node_modules/rapidoc/dist/rapidoc-min.js
dst=../crates/http/assets/rapidoc-min.js
if [ "${1:-}" = --check ]; then
  cmp "$src" "$dst" || { echo "$dst differs from the pinned rapidoc: run web/vendor.sh" >&2; exit 1; }
else
  cp "$src" "$dst"
  cp node_modules/rapidoc/dist/rapidoc-min.js.LICENSE.txt ../crates/http/assets/
  cp node_modules/rapidoc/LICENSE.txt ../crates/http/assets/rapidoc-LICENSE.txt
fi
