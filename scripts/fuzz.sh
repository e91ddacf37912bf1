#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, clang, ASan+UBSan) with the
# `asan` preset into build-asan/ and gives each a bounded run from its
# committed seed corpus (scripts/test.sh does, after the sanitizer suite).
# Usage: scripts/fuzz.sh [SECONDS_PER_FUZZER (default 20)] [FUZZER...]
# A crash, a leak, a hang (an input running over 10 s) or running out of
# memory fails the script (after the other fuzzers have run); the reproducer is left in build-asan/fuzz-crashes/.
# Replay one with build-asan/tests/fuzz/NAME_fuzz FILE; once fixed, add it
# to tests/fuzz/corpus/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
all=(safetensors model_config adapter_config tokenizer tokenizer_config suite chat_request manifest lock_file recipe
  action_entry gguf)
fuzzers=("${@:-${all[@]}}")
cmake --preset asan >/dev/null
cmake --build build-asan -j "$(nproc)" --target "${fuzzers[@]/%/_fuzz}"
crashes=build-asan/fuzz-crashes
mkdir -p "$crashes"
failed=()
for f in "${fuzzers[@]}"; do
  # A scratch corpus: new inputs found in this run are not committed.
  work=build-asan/fuzz-corpus/$f
  mkdir -p "$work"
  rm -f "$crashes/$f"-*
  echo "fuzz: $f for ${seconds}s"
  status=0
  # No -max_len: libFuzzer takes it from the largest seed (at least 4 KiB),
  # so that a whole lock file or tokenizer.json seed is not cut short.
  build-asan/tests/fuzz/${f}_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$crashes/${f}-" -print_final_stats=1 "$work" "tests/fuzz/corpus/$f" >"$crashes/$f.log" 2>&1 ||
    status=$?
  grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY" "$crashes/$f.log" || true
  if [ "$status" -ne 0 ] || ls "$crashes/$f"-* >/dev/null 2>&1; then
    echo "fuzz: $f failed (exit $status); log $crashes/$f.log, reproducers $crashes/$f-*" >&2
    failed+=("$f")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
