#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/, clang, ASan+UBSan) into
# build-fuzz/ and gives each a bounded run from its committed seed corpus.
# Usage: scripts/fuzz.sh [SECONDS_PER_FUZZER (default 20)] [FUZZER...]
# A crash fails the script; the reproducer is left in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
all=(safetensors model_config adapter_config tokenizer tokenizer_config suite chat_request manifest lock_file recipe
  action_entry gguf)
fuzzers=("${@:-${all[@]}}")
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMODELBUILD_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${fuzzers[@]/%/_fuzz}"
mkdir -p build-fuzz/crashes
for f in "${fuzzers[@]}"; do
  # A scratch corpus: new inputs found in this run are not committed.
  work=build-fuzz/corpus/$f
  mkdir -p "$work"
  echo "fuzz: $f for ${seconds}s"
  build-fuzz/tests/fuzz/${f}_fuzz -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 \
    -artifact_prefix="build-fuzz/crashes/${f}-" -print_final_stats=1 "$work" "tests/fuzz/corpus/$f" 2>&1 |
    grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY" || true
  if ls build-fuzz/crashes/"$f"-* >/dev/null 2>&1; then
    echo "fuzz: $f crashed; reproducers in build-fuzz/crashes/" >&2
    exit 1
  fi
done
