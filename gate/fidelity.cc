#include "gate/fidelity.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "inference/engine.h"
#include "tensors/safetensors.h"
#include "tensors/safetensors_writer.h"

namespace mb::gate {

std::vector<double> log_softmax(std::span<const float> logits) {
  double max = -INFINITY;
  for (float x : logits) max = std::max(max, double(x));
  double sum = 0;
  for (float x : logits) sum += std::exp(double(x) - max);
  const double log_z = max + std::log(sum);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = double(logits[i]) - log_z;
  return out;
}

double kl_divergence(std::span<const double> log_p, std::span<const double> log_q) {
  double kl = 0;
  for (size_t i = 0; i < log_p.size(); ++i) {
    // A token the reference gives no mass contributes nothing (0 log 0 = 0).
    if (std::isinf(log_p[i])) continue;
    kl += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
  }
  return kl;
}

size_t argmax(std::span<const float> values) {
  return static_cast<size_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

int64_t ReferenceLogits::positions() const {
  int64_t n = 0;
  for (const auto& c : cases) n += c.scored();
  return n;
}

Result<ReferenceLogits> compute_reference(inference::Engine& reference, const Suite& suite, int continuation_tokens) {
  ReferenceLogits ref;
  ref.vocab = reference.summary().vocab;
  ref.continuation_tokens = continuation_tokens;
  const nlohmann::ordered_json no_tools;
  for (const Case& c : suite.cases) {
    std::vector<inference::ChatMessage> messages;
    if (!suite.system.empty()) messages.push_back({"system", suite.system});
    messages.push_back({"user", c.prompt});
    MB_ASSIGN(std::string prompt, reference.render_chat(messages, suite.tools.empty() ? no_tools : suite.tools));
    MB_ASSIGN(std::vector<int32_t> tokens, reference.tokenize(prompt));
    inference::GenerateOptions opts;
    opts.max_tokens = continuation_tokens;
    MB_ASSIGN(inference::Generation g, reference.generate_from_text(prompt, opts));
    ReferenceCase rc;
    rc.prompt = c.prompt;
    rc.first_scored = static_cast<int64_t>(tokens.size()) - 1;
    rc.tokens = std::move(tokens);
    rc.tokens.insert(rc.tokens.end(), g.tokens.begin(), g.tokens.end());
    MB_ASSIGN(std::vector<float> all, reference.all_logits(rc.tokens));
    rc.logits.assign(all.begin() + rc.first_scored * ref.vocab, all.end());
    ref.cases.push_back(std::move(rc));
  }
  return ref;
}

namespace {

constexpr const char* kFormat = "modelbuild.reference_logits";

template <typename T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span<const T>(v));
}

}  // namespace

Status write_reference(FileSystem& fs, const fs::path& path, const ReferenceLogits& ref) {
  std::vector<TensorData> tensors;
  std::map<std::string, std::string> meta = {{"format", kFormat},
                                             {"version", "1"},
                                             {"vocab", std::to_string(ref.vocab)},
                                             {"continuation_tokens", std::to_string(ref.continuation_tokens)},
                                             {"cases", std::to_string(ref.cases.size())}};
  for (size_t i = 0; i < ref.cases.size(); ++i) {
    const ReferenceCase& c = ref.cases[i];
    const std::string p = fmt::format("case.{}.", i);
    tensors.push_back({{p + "tokens", DType::kI32, {int64_t(c.tokens.size())}}, bytes_of(c.tokens)});
    tensors.push_back({{p + "logits", DType::kF32, {c.scored(), ref.vocab}}, bytes_of(c.logits)});
    meta[p + "prompt"] = c.prompt;
    meta[p + "first_scored"] = std::to_string(c.first_scored);
  }
  return write_safetensors(fs, path, tensors, meta);
}

namespace {

Result<int64_t> meta_int(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata().find(key);
  if (it == f.metadata().end())
    return make_error(Errc::kCorrupt, f.where(), "reference logits without metadata '{}'", key);
  try {
    return std::stoll(it->second);
  } catch (const std::exception&) {
    return make_error(Errc::kCorrupt, f.where(), "metadata '{}' is not a number: '{}'", key, it->second);
  }
}

template <typename T>
Result<std::vector<T>> tensor_of(const SafetensorsFile& f, const std::string& name, DType dtype, uint64_t numel) {
  TensorRef t = f.get(name);
  if (!t || t.info->dtype != dtype || t.info->numel() != numel)
    return make_error(Errc::kCorrupt, f.where(), "tensor '{}' is missing or has another dtype or size", name);
  std::vector<T> out(numel);
  std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  return out;
}

Result<ReferenceCase> read_case(const SafetensorsFile& f, size_t i, int64_t vocab) {
  const std::string p = fmt::format("case.{}.", i);
  ReferenceCase c;
  const TensorInfo* tok = f.find(p + "tokens");
  if (!tok || tok->shape.size() != 1) return make_error(Errc::kCorrupt, f.where(), "no tensor '{}tokens'", p);
  MB_ASSIGN(c.tokens, tensor_of<int32_t>(f, p + "tokens", DType::kI32, tok->numel()));
  MB_ASSIGN(c.first_scored, meta_int(f, p + "first_scored"));
  if (c.first_scored < 0 || c.first_scored >= int64_t(c.tokens.size()))
    return make_error(Errc::kCorrupt, f.where(), "case {}: first_scored {} outside its {} tokens", i, c.first_scored,
                      c.tokens.size());
  MB_ASSIGN(c.logits, tensor_of<float>(f, p + "logits", DType::kF32, uint64_t(c.scored() * vocab)));
  c.prompt = f.metadata().count(p + "prompt") ? f.metadata().at(p + "prompt") : "";
  return c;
}

}  // namespace

Result<ReferenceLogits> read_reference(const FileSystem& fs, const fs::path& path) {
  MB_ASSIGN(SafetensorsFile f, SafetensorsFile::open(fs, path));
  auto format = f.metadata().find("format");
  if (format == f.metadata().end() || format->second != kFormat || f.metadata().count("version") == 0 ||
      f.metadata().at("version") != "1")
    return make_error(Errc::kCorrupt, path.string(), "not a version 1 reference logits file");
  ReferenceLogits ref;
  MB_ASSIGN(ref.vocab, meta_int(f, "vocab"));
  MB_ASSIGN(int64_t n, meta_int(f, "cases"));
  MB_ASSIGN(int64_t cont, meta_int(f, "continuation_tokens"));
  ref.continuation_tokens = static_cast<int>(cont);
  if (ref.vocab <= 0 || n < 0) return make_error(Errc::kCorrupt, path.string(), "bad vocab or case count");
  for (int64_t i = 0; i < n; ++i) {
    MB_ASSIGN(ReferenceCase c, read_case(f, size_t(i), ref.vocab));
    ref.cases.push_back(std::move(c));
  }
  return ref;
}

void FidelityAccumulator::add(std::span<const float> ref_logits, std::span<const float> candidate_logits) {
  const std::vector<double> p = log_softmax(ref_logits);
  const std::vector<double> q = log_softmax(candidate_logits);
  const double kl = kl_divergence(p, q);
  m_kl_sum += kl;
  m_kl_max = std::max(m_kl_max, kl);
  m_agree += argmax(ref_logits) == argmax(candidate_logits);
  ++m_positions;
}

FidelityFigures FidelityAccumulator::figures() const {
  FidelityFigures f;
  f.positions = m_positions;
  if (m_positions == 0) return f;
  f.mean_kl = m_kl_sum / double(m_positions);
  f.max_kl = m_kl_max;
  f.top1_agreement = double(m_agree) / double(m_positions);
  return f;
}

namespace {

nlohmann::json figures_json(const FidelityFigures& f) {
  return {
      {"mean_kl", f.mean_kl}, {"max_kl", f.max_kl}, {"top1_agreement", f.top1_agreement}, {"positions", f.positions}};
}

}  // namespace

nlohmann::json FidelityReport::to_json() const {
  nlohmann::json j = figures_json(overall);
  j["version"] = 1;
  j["cases"] = nlohmann::json::array();
  for (const auto& [prompt, f] : cases) {
    nlohmann::json c = figures_json(f);
    c["prompt"] = prompt;
    j["cases"].push_back(std::move(c));
  }
  return j;
}

Result<FidelityReport> measure_fidelity(inference::Engine& candidate, const ReferenceLogits& ref) {
  const int64_t vocab = candidate.summary().vocab;
  if (vocab != ref.vocab)
    return make_error(Errc::kInvalidInput, "fidelity", "the model's vocabulary has {} tokens and the reference's {}",
                      vocab, ref.vocab);
  FidelityReport report;
  FidelityAccumulator all;
  for (const ReferenceCase& c : ref.cases) {
    MB_ASSIGN(std::vector<float> logits, candidate.all_logits(c.tokens));
    FidelityAccumulator one;
    for (int64_t k = 0; k < c.scored(); ++k) {
      std::span<const float> r(c.logits.data() + k * vocab, size_t(vocab));
      std::span<const float> q(logits.data() + (c.first_scored + k) * vocab, size_t(vocab));
      one.add(r, q);
      all.add(r, q);
    }
    report.cases.emplace_back(c.prompt, one.figures());
  }
  report.overall = all.figures();
  return report;
}

}  // namespace mb::gate
