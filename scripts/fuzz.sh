#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, clang, ASan+UBSan) with the
# `asan` preset into build-asan/ and gives each a bounded run from its
# committed seed corpus (scripts/test.sh does, after the sanitizer suite).
# Usage: scripts/fuzz.sh [SECONDS_PER_FUZZER (default 20)] [FUZZER...]
# MODELBUILD_FUZZ_JOBS fuzzers run at once (default: the number of cores).
# A crash, a leak, a hang (an input running over 10 s) or running out of
# memory fails the script (after the other fuzzers have run); the
# reproducer is left in build-asan/fuzz-crashes/, the log in NAME.log.
# Replay one with build-asan/tests/fuzz/NAME_fuzz FILE; once fixed, add it
# to tests/fuzz/corpus/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
all=(safetensors model_config adapter_config tokenizer tokenizer_config suite chat_request manifest lock_file recipe
  action_entry gguf materialized_marker file_digest_state)
fuzzers=("${@:-${all[@]}}")
cmake --preset asan >/dev/null
cmake --build build-asan -j "$(nproc)" --target "${fuzzers[@]/%/_fuzz}"
crashes=build-asan/fuzz-crashes
mkdir -p "$crashes"
jobs=${MODELBUILD_FUZZ_JOBS:-$(nproc)}

# One fuzzer's bounded run; its status is left in $crashes/NAME.status.
run_one() {
  local f=$1 status=0
  # A scratch corpus: new inputs found in this run are not committed.
  local work=build-asan/fuzz-corpus/$f
  mkdir -p "$work"
  rm -f "$crashes/$f"-*
  # No -max_len: libFuzzer takes it from the largest seed (at least 4 KiB),
  # so that a whole lock file or tokenizer.json seed is not cut short.
  build-asan/tests/fuzz/${f}_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$crashes/${f}-" -print_final_stats=1 "$work" "tests/fuzz/corpus/$f" >"$crashes/$f.log" 2>&1 ||
    status=$?
  echo "$status" >"$crashes/$f.status"
}

# The fuzzers are independent, so they run $jobs at a time (one per core by
# default): on 2 cores the whole set takes half the wall time.
echo "fuzz: ${#fuzzers[@]} fuzzers, ${seconds}s each, $jobs at a time"
running=0
for f in "${fuzzers[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_one "$f" &
  running=$((running + 1))
done
wait || true
failed=()
for f in "${fuzzers[@]}"; do
  echo "fuzz: $f"
  grep -E "^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|ERROR|SUMMARY" "$crashes/$f.log" || true
  status=$(cat "$crashes/$f.status" 2>/dev/null || echo missing)
  if [ "$status" != 0 ] || ls "$crashes/$f"-* >/dev/null 2>&1; then
    echo "fuzz: $f failed (exit $status); log $crashes/$f.log, reproducers $crashes/$f-*" >&2
    failed+=("$f")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
