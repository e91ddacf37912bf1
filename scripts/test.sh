#!/usr/bin/env bash
# The README's second command: install dependencies, build everything
# (benchmarks included, so they keep compiling), and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/check-style.sh   # formatting and naming, before spending minutes on a build
scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
# Each parser of untrusted bytes gets a short fuzzing run under ASan+UBSan.
scripts/fuzz.sh 20
