#!/usr/bin/env bash
# noop_build: how long `modelbuild TARGET` takes when nothing changed, on a
# recipe whose inputs total 8 GiB (issue 2's target: 20 ms median or less;
# ninja is in this class, DVC takes minutes).
#
#   bench/noop_build.sh [DIR] [GIB]      (defaults: a temp dir, 8)
#
# Writes GIB files of 1 GiB, builds once cold (that run hashes every byte and
# is timed too), then measures the no-op build with hyperfine. The data is
# removed at the end unless DIR was given. MODELBUILD_BIN picks the binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${MODELBUILD_BIN:-$root/build/modelbuild}")"
dir="${1:-}"
gib="${2:-8}"
if [[ -z "$dir" ]]; then
  dir="$(mktemp -d "${TMPDIR:-/tmp}/mb-noop-XXXXXX")"
  trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
cd "$dir"

sources=""
inputs=""
refs=""
for ((i = 0; i < gib; i++)); do
  f="in$i.bin"
  # Distinct content per file; random bytes would only slow the set-up.
  [[ -f "$f" ]] || { printf 'file %d\n' "$i"; head -c $((1 << 30)) /dev/zero; } >"$f"
  sources+="${sources:+, }s$i: $f"
  inputs+="${inputs:+, }s$i"
  refs+=" {s$i}"
done
printf '%s\n' \
  "sources: {$sources}" \
  "targets:" \
  "  listing:" \
  "    command: \"ls -lL$refs > {out}/listing.txt\"" \
  "    inputs: [$inputs]" \
  "    outputs: [listing.txt]" >modelbuild.yaml

echo "== cold build (hashes $gib GiB)"
rm -rf .modelbuild build
/usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB peak" "$bin" listing
echo "== no-op build"
hyperfine --warmup 3 --runs 50 -N "$bin listing"
