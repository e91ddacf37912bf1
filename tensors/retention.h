#pragma once
// Retention: how much of an adapter's weight change survives a step that
// rounds or quantizes the fused weights.
//
// For an adapted tensor with base weights W0 (f32), intended fused weights
// W* = W0 + ΔW (f32, computed from the adapters; ΔW includes DoRA's
// rescaling) and the weights the output actually holds Ŵ (dequantized to
// f32):
//
//   retained = 1 − ‖(Ŵ − W0) − ΔW‖ / ‖ΔW‖  =  1 − ‖Ŵ − W*‖ / ‖ΔW‖
//   cosine   = ⟨Ŵ − W0, ΔW⟩ / (‖Ŵ − W0‖ · ‖ΔW‖)
//
// (Frobenius norms). 1 means every bit of the change is there; 0 means the
// error is as large as the change itself; it goes negative when rounding adds
// more noise than the adapter added signal. "Overall" is the same formula
// over all adapted tensors together (sums of squares), so large tensors
// weigh more. A tensor whose ΔW is all zero (an untrained adapter) has no
// defined retention and is reported with null figures.
//
// Sums are accumulated in double per row (RowSums), rows are combined in row
// order and tensors in name order, so the figures are identical whatever the
// thread count.
//
// This header is pure arithmetic plus the JSON/verdict rendering;
// measure_retention (below) reads model directories.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

class Reporter;
struct Adapter;

// Sums of one row (or any set of elements), in double.
struct RetentionSums {
  double delta_sq = 0;   // Σ ΔW²
  double error_sq = 0;   // Σ (Ŵ − W*)²
  double change_sq = 0;  // Σ (Ŵ − W0)²
  double dot = 0;        // Σ (Ŵ − W0)·ΔW
  int64_t elements = 0;

  // REQUIRES: the three spans have the same length.
  void add(std::span<const float> w0, std::span<const float> target, std::span<const float> result);
  RetentionSums& operator+=(const RetentionSums& o);
};

struct TensorRetention {
  std::string name;  // base tensor, "model.layers.0.self_attn.q_proj.weight"
  RetentionSums sums;
  // nullopt when ΔW is all zero.
  std::optional<double> retained() const;
  std::optional<double> cosine() const;
};

struct RetentionReport {
  // What rounded the weights, for the verdict: "4-bit in-place fusion",
  // "8-bit quantization", "float16 fusion".
  std::string what;
  // True when the step re-quantizes the base's own bits (in-place fusion),
  // and the bits the weights were quantized to (0: float output); both
  // choose the advice in the verdict.
  bool inplace = false;
  int bits = 0;
  std::vector<TensorRetention> tensors;  // sorted by name
  RetentionSums total;

  bool measured() const { return !tensors.empty(); }
  std::optional<double> retained() const;
  std::optional<double> cosine() const;
  // Appends a tensor (kept sorted by name) and adds it to the total.
  void add_tensor(TensorRetention t);
  // {"what", "retained", "cosine", "delta_norm", "error_norm", "tensors":
  //  [{"name", "retained", "cosine", "delta_norm", "error_norm", "elements"}],
  //  "verdict"}; undefined figures are null.
  nlohmann::json to_json() const;
  // One or two plain sentences for the user.
  std::string verdict() const;
};

// The standalone retention measurement (the engine's `retention` step): for
// every tensor the adapters touch, W0 from `base_dir`, W* = W0 + ΔW from
// `adapters` applied in order, Ŵ from `model_dir` (float or quantized, any
// dtype). Streams one tensor at a time over `threads` threads (0 = all
// cores). Errors name the tensor and file; a tensor of the base that the
// model lacks, or with another shape, is kInvalidInput.
// `what` and `bits` fill the report's fields of the same names.
Result<RetentionReport> measure_retention(const FileSystem& fs, const fs::path& model_dir, const fs::path& base_dir,
                                          const std::vector<Adapter>& adapters, const std::string& what, int bits,
                                          int threads, Reporter& reporter);

}  // namespace mb
