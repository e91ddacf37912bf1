// kernels_bench: one matmul of Qwen2.5-0.5B's largest layer shape (the MLP's
// [4864, 896] up projection) per kernel implementation (portable, AVX2,
// AVX-512: all give identical bits), for 1 token (decode) and 64 tokens
// (prefill), on one thread. Google Benchmark; CPU time per product is the
// figure to compare, as a ratio between implementations in one run, since
// one thread's CPU time is little disturbed by other load on the machine.
//
//   build/bench/kernels_bench [--benchmark_filter=q8]
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "inference/kernels.h"

namespace mb::inference {
namespace {

constexpr int64_t kRows = 4864, kCols = 896;

struct Affine {
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales, biases;  // bf16
  WeightMatrix w;
};

uint16_t bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>(u >> 16);
}

Affine make_affine(int bits) {
  std::mt19937 rng(1);
  Affine a;
  a.codes.resize(kRows * kCols * bits / 8);
  for (auto& c : a.codes) c = static_cast<uint8_t>(rng());
  const int64_t groups = kRows * kCols / 64;
  std::normal_distribution<float> n(0, 0.01f);
  for (int64_t g = 0; g < groups; ++g) {
    a.scales.push_back(bf16(n(rng)));
    a.biases.push_back(bf16(n(rng)));
  }
  a.w = {kRows, kCols, WeightFormat::kAffine, FloatType::kBF16, bits, 64};
  a.w.data = reinterpret_cast<const std::byte*>(a.codes.data());
  a.w.scales = reinterpret_cast<const std::byte*>(a.scales.data());
  a.w.biases = reinterpret_cast<const std::byte*>(a.biases.data());
  return a;
}

void run(benchmark::State& state, const std::string& isa, int bits) {
  if (!force_kernel_isa(isa)) {
    state.SkipWithError(("this CPU has no " + isa).c_str());
    return;
  }
  const int64_t tokens = state.range(0);
  Affine a = make_affine(bits);
  std::vector<float> x(tokens * kCols), y(tokens * kRows);
  std::mt19937 rng(2);
  std::normal_distribution<float> n(0, 1);
  for (auto& v : x) v = n(rng);
  ThreadPool pool(1);
  for (auto _ : state) {
    matmul(a.w, x.data(), tokens, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weights/s"] =
      benchmark::Counter(static_cast<double>(kRows * kCols * tokens), benchmark::Counter::kIsIterationInvariantRate);
  force_kernel_isa("");
}

void register_all() {
  for (const char* isa : {"portable", "avx2", "avx512"})
    for (int bits : {4, 8})
      benchmark::RegisterBenchmark(("matmul/q" + std::to_string(bits) + "/" + isa).c_str(),
                                   [=](benchmark::State& s) { run(s, isa, bits); })
          ->Arg(1)
          ->Arg(64)
          ->MeasureProcessCPUTime()
          ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace mb::inference

int main(int argc, char** argv) {
  mb::inference::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
