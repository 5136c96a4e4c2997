#!/usr/bin/env bash
# Runs every fuzz target for a while: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# CI (scripts/test.sh with HAILO_CLIP_FUZZ_SECS) runs each target briefly; docs/fuzzing.md has the
# long run. Seeds come from the repository's fixtures (fuzz/seeds.py); corpora grow under
# .cache/fuzz/corpus/<target> and are kept between runs. A crash, a hang (-timeout) or memory
# beyond -rss_limit_mb fails the run; libFuzzer writes the input under fuzz/artifacts/<target>/,
# which then belongs in fuzz/regressions/<target>/ once fixed (replayed by this script first).
# FUZZ_SANITIZER=none builds without AddressSanitizer (2-3 times the rate, for long runs of the
# targets that reach no unsafe code of their own; docs/fuzzing.md). FUZZ_TIMEOUT (10 s): a unit
# that runs longer is a hang; a long run beside benchmarks at idle priority needs more.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_image request_json config tokenizer npy access)

if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz (once; about 2 minutes)" >&2
  cargo install cargo-fuzz --locked --quiet
fi
# cargo fuzz passes -Z sanitizer flags; a stable toolchain takes them with RUSTC_BOOTSTRAP.

if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

cache=../.cache/fuzz
python3 seeds.py "$cache/seeds" >/dev/null
san=(-s "${FUZZ_SANITIZER:-address}")
cargo fuzz build --release "${san[@]}" >/dev/null
for t in "${targets[@]}"; do
  corpus="$cache/corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
    cargo fuzz run --release "${san[@]}" "$t" "regressions/$t"/* -- -runs=0 >/dev/null
  fi
  log=$(mktemp)
  if ! cargo fuzz run --release "${san[@]}" "$t" "$corpus" "$cache/seeds/$t" -- \
      -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "FAIL fuzz $t (input saved under fuzz/artifacts/$t)"
    exit 1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  echo "PASS fuzz $t: $execs executions in ${secs} s, corpus $(ls "$corpus" | wc -l) files"
  rm -f "$log"
done
