#!/usr/bin/env bash
# Request-overhead benchmark: the release server, mock backend timed like a Hailo-10H, loaded by wrk
# on 127.0.0.1. See docs/benchmark.md. About 90 s after the build with the default 10 s per run.
#
#   bash bench/service.sh                  # build release, run, print the table
#   BENCH_DURATION=5 bash bench/service.sh # shorter runs
#   BENCH_STRICT=1 bash bench/service.sh   # exit 1 when a target is missed
#   HAILO_CLIP_BIN=path bash bench/service.sh  # skip the build, use this binary
#   BENCH_NICE=0 bash bench/service.sh     # no priority boost (default -10 as root: shields the
#                                          # server and wrk from other work on a shared machine)
#
# Results: table on stdout, JSON at $BENCH_OUT (default bench/results/service.json, git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v python3 >/dev/null || need_apt+=(python3)
if ((${#need_apt[@]})); then
    echo "installing ${need_apt[*]}" >&2
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

bin="${HAILO_CLIP_BIN:-}"
if [[ -z $bin ]]; then
    bash scripts/ensure-nasm.sh release
    cargo build --release --locked --quiet --bin hailo-clip
    bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/hailo-clip"
fi

args=(--binary "$bin" --duration "${BENCH_DURATION:-10}"
      --out "${BENCH_OUT:-bench/results/service.json}")
[[ -n ${BENCH_STRICT:-} && ${BENCH_STRICT} != 0 ]] && args+=(--strict)
nice_cmd=()
nice_level="${BENCH_NICE:-$([[ $(id -u) -eq 0 ]] && echo -10 || echo 0)}"
[[ $nice_level != 0 ]] && nice_cmd=(nice -n "$nice_level")
exec "${nice_cmd[@]}" python3 bench/service/run.py "${args[@]}" "$@"
