#!/usr/bin/env bash
# Extracts llama.cpp's public headers (include/, ggml/include/) from the git
# bundle that the pinned node-llama-cpp package carries
# (node_modules/node-llama-cpp/llama/gitRelease.bundle, the source its
# prebuilt libllama was built from) into OUTDIR, so that quantize.c compiles
# against the exact header of the library it links. Nothing of llama.cpp is
# committed to this repository; the build tree holds the extracted copy.
#
#   extract-headers.sh BUNDLE OUTDIR
set -euo pipefail
bundle=$1 out=$2
[ -f "$bundle" ] || { echo "extract-headers.sh: no $bundle; run scripts/install-deps.sh --test" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git init -q --bare "$tmp/git"
git -C "$tmp/git" fetch -q "$(realpath "$bundle")" HEAD
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
git -C "$tmp/git" archive FETCH_HEAD include ggml/include | tar -x -C "$out.tmp"
git -C "$tmp/git" rev-parse FETCH_HEAD >"$out.tmp/COMMIT"
rm -rf "$out"
mv "$out.tmp" "$out"
