#!/usr/bin/env bash
# Configures and builds modelbuild into build/ (Release, all cores).
# Arguments go to cmake's configure (scripts/test.sh: -DMODELBUILD_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
