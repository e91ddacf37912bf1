#include "tensors/retention.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <map>

#include "base/parallel.h"
#include "base/reporter.h"
#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/kernels.h"

namespace mb {

void RetentionSums::add(std::span<const float> w0, std::span<const float> target, std::span<const float> result) {
  assert(w0.size() == target.size() && w0.size() == result.size());
  // Four interleaved partial sums (element i goes to lane i % 4), combined
  // in lane order: a fixed order, so the figures stay deterministic, with
  // four independent dependency chains for speed (kernels.h).
  double lanes[4][4] = {};
  kernels::table().retention_lanes(w0.data(), target.data(), result.data(), static_cast<int64_t>(w0.size()), lanes);
  const auto total = [](const double* l) { return (l[0] + l[1]) + (l[2] + l[3]); };
  delta_sq += total(lanes[0]);
  error_sq += total(lanes[1]);
  change_sq += total(lanes[2]);
  dot += total(lanes[3]);
  elements += static_cast<int64_t>(w0.size());
}

RetentionSums& RetentionSums::operator+=(const RetentionSums& o) {
  delta_sq += o.delta_sq;
  error_sq += o.error_sq;
  change_sq += o.change_sq;
  dot += o.dot;
  elements += o.elements;
  return *this;
}

namespace {

std::optional<double> retained_of(const RetentionSums& s) {
  if (!(s.delta_sq > 0)) return std::nullopt;
  return 1.0 - std::sqrt(s.error_sq) / std::sqrt(s.delta_sq);
}

std::optional<double> cosine_of(const RetentionSums& s) {
  if (!(s.delta_sq > 0)) return std::nullopt;
  if (!(s.change_sq > 0)) return 0.0;  // nothing changed at all: no alignment
  return s.dot / (std::sqrt(s.change_sq) * std::sqrt(s.delta_sq));
}

nlohmann::json or_null(std::optional<double> v) {
  return v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

std::optional<double> TensorRetention::retained() const { return retained_of(sums); }
std::optional<double> TensorRetention::cosine() const { return cosine_of(sums); }
std::optional<double> RetentionReport::retained() const { return retained_of(total); }
std::optional<double> RetentionReport::cosine() const { return cosine_of(total); }

void RetentionReport::add_tensor(TensorRetention t) {
  total += t.sums;
  auto it = std::lower_bound(tensors.begin(), tensors.end(), t.name,
                             [](const TensorRetention& a, const std::string& n) { return a.name < n; });
  tensors.insert(it, std::move(t));
}

nlohmann::json RetentionReport::to_json() const {
  nlohmann::json j;
  j["what"] = what;
  j["retained"] = or_null(retained());
  j["cosine"] = or_null(cosine());
  j["delta_norm"] = std::sqrt(total.delta_sq);
  j["error_norm"] = std::sqrt(total.error_sq);
  j["tensors"] = nlohmann::json::array();
  for (const TensorRetention& t : tensors)
    j["tensors"].push_back({{"name", t.name},
                            {"retained", or_null(t.retained())},
                            {"cosine", or_null(t.cosine())},
                            {"delta_norm", std::sqrt(t.sums.delta_sq)},
                            {"error_norm", std::sqrt(t.sums.error_sq)},
                            {"elements", t.sums.elements}});
  j["verdict"] = verdict();
  return j;
}

std::string RetentionReport::verdict() const {
  if (!measured()) return fmt::format("{}: no adapted tensors, nothing to measure.", what);
  const std::optional<double> r = retained();
  if (!r) return fmt::format("{}: the adapters change no weights (their delta is all zero).", what);
  const double pct = std::max(0.0, *r) * 100.0;
  const std::string kept = *r <= 0 ? fmt::format("kept none of the adapter's weight change (retention {:.2f})", *r)
                                   : fmt::format("kept {:.0f}% of the adapter's weight change (retention {:.2f})",
                                                 pct >= 99.5 && *r < 1 ? 99.0 : pct, *r);
  // Upper-case the first letter of `what` to start a sentence.
  std::string head = what;
  if (!head.empty() && head[0] >= 'a' && head[0] <= 'z') head[0] = static_cast<char>(head[0] - 'a' + 'A');
  // Proportionate wording: a small loss (8-bit quantization typically keeps
  // ~0.9) is stated, not alarmed about; advice comes only when the loss is
  // large enough to change behaviour.
  if (*r >= 0.9) return fmt::format("{} {}.", head, kept);
  if (*r >= 0.8) return fmt::format("{} {}: the fused model keeps most of the adapter's weight change.", head, kept);
  const std::string advice = inplace     ? "Fuse with mode: dequantize, then quantize to 8 or 6 bits."
                             : bits == 0 ? "Fuse into float32 to keep it."
                             : bits < 6  ? "Quantize to 8 or 6 bits, or keep the fused model in float."
                             : bits < 8  ? "Quantize to 8 bits, or keep the fused model in float."
                                         : "Keep the fused model in float (float16 or bfloat16).";
  if (*r >= 0.3)
    return fmt::format("{} {}: the fused model keeps part of what the adapter learned; check it against the gate. {}",
                       head, kept, advice);
  return fmt::format(
      "{} {}: the adapter's weight change is lost, and the fused model will behave like the base model. {}", head, kept,
      advice);
}

Result<RetentionReport> measure_retention(const FileSystem& fs, const fs::path& model_dir, const fs::path& base_dir,
                                          const std::vector<Adapter>& adapters, const std::string& what, int bits,
                                          int threads, Reporter& reporter) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, model_dir));
  MB_ASSIGN(ModelDir base, ModelDir::open(fs, base_dir));
  std::map<std::string, std::vector<const LoraModule*>> adapted;
  for (const Adapter& a : adapters) {
    MB_TRY(validate_adapter(a, base_shape_lookup(base), base_dir.string()));
    for (const LoraModule& m : a.modules) adapted[m.weight_name()].push_back(&m);
  }
  RetentionReport report;
  report.what = what;
  report.bits = bits;
  threads = resolve_threads(threads);
  int64_t done = 0;
  for (const auto& entry : adapted) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const auto& name = entry.first;
    const auto& modules = entry.second;
    if (!model.weights().contains(name))
      return make_error(Errc::kInvalidInput, model_dir.string(),
                        "the model has no tensor {}, which the adapters change", name);
    MB_ASSIGN(WeightRows result, WeightRows::open(model, name));
    MB_ASSIGN(WeightRows w0, WeightRows::open(base, name));
    if (result.rows() != w0.rows() || result.cols() != w0.cols())
      return make_error(Errc::kInvalidInput, result.file(), "tensor {} is [{}, {}] here but [{}, {}] in the base", name,
                        result.rows(), result.cols(), w0.rows(), w0.cols());
    const int64_t cols = w0.cols(), per = row_chunk_rows(w0.rows(), cols);
    std::vector<RetentionSums> sums(static_cast<size_t>((w0.rows() + per - 1) / per));
    MB_TRY(for_each_row_chunk(w0.rows(), cols, threads, [&](int64_t chunk, int64_t begin, int64_t end) -> Status {
      const size_t c = static_cast<size_t>(cols);
      std::vector<float> base_row(c), target_row(c), result_row(c), scratch(c);
      WeightRows::Scratch base_scratch = w0.make_scratch(), result_scratch = result.make_scratch();
      RetentionSums& s = sums[static_cast<size_t>(chunk)];
      for (int64_t r = begin; r < end; ++r) {
        w0.read_row(r, base_row, base_scratch);
        result.read_row(r, result_row, result_scratch);
        fuse_row(modules, r, base_row, target_row, scratch);
        s.add(base_row, target_row, result_row);
      }
      return Status::ok_status();
    }));
    TensorRetention t{name, {}};
    for (const RetentionSums& s : sums) t.sums += s;
    report.add_tensor(std::move(t));
    reporter.progress("", static_cast<uint64_t>(++done), adapted.size(), "tensors");
  }
  return report;
}

}  // namespace mb
