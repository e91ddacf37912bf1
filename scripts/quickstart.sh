#!/usr/bin/env bash
# The README's first command: install dependencies, build modelbuild, and
# build the bundled example's gated fused_8bit target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/modelbuild -C examples/tiny fused_8bit
