#!/usr/bin/env bash
# The README's second command: install dependencies, build everything
# (benchmarks included, so they keep compiling), and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/check-style.sh   # formatting and naming, before spending minutes on a build
# g++ with warnings as errors, the tests and benchmarks included.
scripts/build.sh -DMODELBUILD_WERROR=ON
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600
# The `asan` preset (clang 14, ASan+UBSan, warnings as errors, so a second
# compiler's warnings too): the whole suite under the sanitizers, then the
# fuzzers from the same build, each with a bounded run.
cmake --preset asan >/dev/null
cmake --build build-asan -j "$(nproc)"
ctest --test-dir build-asan --output-on-failure -j "$(nproc)" --timeout 1800
scripts/fuzz.sh "${MODELBUILD_FUZZ_SECONDS:-15}"
# The aarch64 cross build and qemu run (docs/releases.md, "Across instruction
# sets"): opt-in (MODELBUILD_TEST_ARM64=1). Not in .ci/run: the cold cross
# build of tensors_test and base_test alone took 304 s on the loaded 2-core
# machine, graph_test and modelbuild (nearly the whole tree again) more than
# that, on top of the x86-64 build and suite within the 45-minute budget.
if [ "${MODELBUILD_TEST_ARM64:-0}" = 1 ]; then scripts/test-arm64.sh; fi
