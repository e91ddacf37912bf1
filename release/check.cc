#include "release/check.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "release/git_source.h"
#include "tensors/safetensors.h"

namespace mb {
namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

std::string describe_file_difference(const FileSystem& fs, const std::string& path, const StepResult& a,
                                     const StepResult& b) {
  std::string msg;
  if (!ends_with(path, ".safetensors")) return msg;
  for (const auto& line : differing_tensors(fs, a.view / path, b.view / path)) msg += "\n      " + line;
  return msg;
}

// A gate's output records timings (seconds, tokens/s) next to its verdict,
// so its bytes differ run to run by design. What must reproduce is the
// verdict: the accuracy and each case's classification.
nlohmann::json gate_verdict_of(const nlohmann::json& report) {
  nlohmann::json v = {{"accuracy", report.value("accuracy", nlohmann::json())}};
  if (report.contains("cases") && report["cases"].is_array())
    for (const auto& c : report["cases"]) v["cases"].push_back({c.value("got", ""), c.value("passed", false)});
  return v;
}

}  // namespace

std::vector<std::string> differing_tensors(const FileSystem& fs, const fs::path& a_path, const fs::path& b_path,
                                           size_t limit) {
  std::vector<std::string> lines;
  auto a = SafetensorsFile::open(fs, a_path);
  auto b = SafetensorsFile::open(fs, b_path);
  if (!a.ok() || !b.ok()) {
    lines.push_back("(cannot compare tensors: " + (!a.ok() ? a.error() : b.error()).to_string() + ")");
    return lines;
  }
  std::map<std::string, const TensorInfo*> in_b;
  for (const auto& t : b->tensors()) in_b[t.name] = &t;
  size_t total = 0;
  auto add = [&](std::string line) {
    if (total++ < limit) lines.push_back(std::move(line));
  };
  for (const auto& ta : a->tensors()) {
    auto it = in_b.find(ta.name);
    if (it == in_b.end()) {
      add(fmt::format("tensor {}: only in the reference build", ta.name));
      continue;
    }
    const TensorInfo& tb = *it->second;
    in_b.erase(it);
    if (ta.dtype != tb.dtype || ta.shape != tb.shape)
      add(fmt::format("tensor {}: dtype or shape differs", ta.name));
    else if (!same_bytes(a->data(ta), b->data(tb)))
      add(fmt::format("tensor {}: values differ", ta.name));
  }
  for (const auto& [name, t] : in_b) add(fmt::format("tensor {}: only in the rebuild", name));
  if (total == 0 && a->metadata() != b->metadata())
    add("the __metadata__ differs");
  else if (total == 0)
    add("every tensor is identical: the header or padding differs");
  if (total > limit) lines.push_back(fmt::format("… and {} more tensors", total - limit));
  return lines;
}

Result<CheckResult> check_reproducible(FileSystem& fs, Reporter& reporter, const Registry& rules, const Recipe& recipe,
                                       const Plan& plan, const BuildOptions& build, const fs::path& scratch) {
  CheckResult out;
  Builder reference(fs, reporter, rules, build);
  MB_ASSIGN(auto git, install_git_sources(fs, recipe, plan, reference));
  MB_ASSIGN(out.reference, reference.build(recipe, plan));
  if (!out.reference.ok()) return out;
  out.reference_ok = true;

  BuildOptions fresh_opts = build;
  fresh_opts.cache_dir = scratch / "cache";
  fresh_opts.state_dir = scratch / "state";
  fresh_opts.build_dir = scratch / "build";
  fresh_opts.use_cache = false;
  fresh_opts.materialize = false;
  // The reference side is the digests the cache recorded when each output
  // was stored; its blobs are not re-hashed here (`cache verify` does that).
  reporter.info(
      "--check: rebuilding every step without the cache, comparing the new outputs' digests with the digests the "
      "cache recorded for them (the cached bytes themselves are checked by `modelbuild cache verify`)");
  Builder fresh(fs, reporter, rules, fresh_opts);
  // The pinned sources are already in the main cache: read them from there.
  fresh.git_resolver = reference.git_resolver;
  auto second = fresh.build(recipe, plan);
  if (!second.ok()) return second.error();
  for (const auto& step : plan.steps) {
    const StepResult& a = out.reference.steps[step.index];
    const StepResult& b = second->steps[step.index];
    if (b.state != StepState::kBuilt) continue;
    out.steps_compared++;
    if (a.output_digest == b.output_digest) continue;
    if (rules.rule(step.kind)->judges()) {
      if (gate_verdict_of(a.report) == gate_verdict_of(b.report)) continue;
      out.differences.push_back(fmt::format("{}: the gate verdict did not reproduce: {} → {}", step.label,
                                            gate_verdict_of(a.report).dump(), gate_verdict_of(b.report).dump()));
      continue;
    }
    std::string msg = fmt::format("{}: not reproducible", step.label);
    std::map<std::string, Digest> before(a.outputs.begin(), a.outputs.end());
    for (const auto& [path, d] : b.outputs) {
      auto it = before.find(path);
      if (it == before.end()) {
        msg += fmt::format("\n  - {} appeared", path);
      } else if (it->second != d) {
        msg += fmt::format("\n  - {} differs: {} → {}", path, it->second.short_hex(), d.short_hex());
        msg += describe_file_difference(fs, path, a, b);
      }
      before.erase(path);
    }
    for (const auto& [path, d] : before) msg += fmt::format("\n  - {} disappeared", path);
    out.differences.push_back(std::move(msg));
  }
  return out;
}

}  // namespace mb
