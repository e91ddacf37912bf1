#include "graph/explain.h"

#include <set>

namespace mb {
namespace {

constexpr const char* kFormat = "modelbuild-explain/1";

nlohmann::json to_json(const ExplainRecord& r) {
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& in : r.inputs) {
    nlohmann::json files = nlohmann::json::object();
    for (const auto& [path, d] : in.files) files[path] = d.hex();
    inputs.push_back({{"role", in.role}, {"digest", in.digest.hex()}, {"origin", in.origin}, {"files", files}});
  }
  return {{"kind", r.kind},
          {"version", r.algorithm_version},
          {"params", r.params},
          {"inputs", inputs},
          {"key", r.key.hex()}};
}

bool from_json(const nlohmann::json& j, ExplainRecord& r) {
  if (!j.is_object()) return false;
  r.kind = j.value("kind", "");
  r.algorithm_version = j.value("version", 0);
  r.params = j.value("params", nlohmann::json::object());
  auto key = Digest::from_hex(j.value("key", ""));
  if (!key.ok()) return false;
  r.key = *key;
  const nlohmann::json inputs = j.value("inputs", nlohmann::json::array());
  for (const auto& in : inputs) {
    ExplainInput e;
    e.role = in.value("role", "");
    e.origin = in.value("origin", "");
    auto d = Digest::from_hex(in.value("digest", ""));
    if (!d.ok()) return false;
    e.digest = *d;
    const nlohmann::json files = in.value("files", nlohmann::json::object());
    for (const auto& [path, hex] : files.items()) {
      auto fd = Digest::from_hex(hex.get<std::string>());
      if (fd.ok()) e.files[path] = *fd;
    }
    r.inputs.push_back(std::move(e));
  }
  return true;
}

std::string short_value(const nlohmann::json& v) {
  if (v.is_null()) return "(unset)";
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Parameters, key by key (both are normalized objects).
void explain_params(const nlohmann::json& old, const nlohmann::json& now, std::vector<std::string>& why) {
  std::set<std::string> keys;
  for (const auto& [k, v] : old.items()) keys.insert(k);
  for (const auto& [k, v] : now.items()) keys.insert(k);
  for (const auto& k : keys) {
    nlohmann::json a = old.contains(k) ? old[k] : nlohmann::json();
    nlohmann::json b = now.contains(k) ? now[k] : nlohmann::json();
    if (a != b) why.push_back(fmt::format("parameter {} changed: {} → {}", k, short_value(a), short_value(b)));
  }
}

// One input whose digest changed: which of its files did, when known.
void explain_changed_input(const ExplainInput& o, const ExplainInput& in, std::vector<std::string>& why) {
  std::vector<std::string> files;
  for (const auto& [path, d] : in.files) {
    auto f = o.files.find(path);
    if (f == o.files.end())
      files.push_back(fmt::format("{} added", path));
    else if (f->second != d)
      files.push_back(fmt::format("{} {} → {}", path, f->second.short_hex(), d.short_hex()));
  }
  for (const auto& [path, d] : o.files)
    if (!in.files.count(path)) files.push_back(fmt::format("{} removed", path));
  for (const auto& f : files) why.push_back(fmt::format("input {} ({}) changed: {}", in.role, in.origin, f));
  if (files.empty())
    why.push_back(
        fmt::format("input {} ({}) changed: {} → {}", in.role, in.origin, o.digest.short_hex(), in.digest.short_hex()));
}

// Inputs, by role.
void explain_inputs(const std::vector<ExplainInput>& old, const std::vector<ExplainInput>& now,
                    std::vector<std::string>& why) {
  std::map<std::string, const ExplainInput*> before;
  for (const auto& in : old) before[in.role] = &in;
  std::set<std::string> seen;
  for (const auto& in : now) {
    seen.insert(in.role);
    auto b = before.find(in.role);
    if (b == before.end())
      why.push_back(fmt::format("new input {} ({})", in.role, in.origin));
    else if (b->second->digest != in.digest)
      explain_changed_input(*b->second, in, why);
  }
  for (const auto& in : old)
    if (!seen.count(in.role)) why.push_back(fmt::format("input {} was removed", in.role));
}

}  // namespace

ExplainLog::ExplainLog(FileSystem& fs, fs::path file, Reporter& reporter)
    : m_fs(fs), m_file(std::move(file)), m_reporter(reporter) {}

void ExplainLog::load() {
  auto text = m_fs.read_file(m_file);
  if (!text.ok()) return;  // first build
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("format", "") != kFormat) {
    m_reporter.warn(fmt::format("{}: unreadable explain log, starting afresh", m_file.string()));
    return;
  }
  const nlohmann::json slots = j.value("slots", nlohmann::json::object());
  for (const auto& [slot, rec] : slots.items()) {
    ExplainRecord r;
    if (from_json(rec, r)) m_records[slot] = std::move(r);
  }
}

Status ExplainLog::save() {
  std::lock_guard<std::mutex> lock(m_mu);
  if (!m_dirty) return {};
  nlohmann::json slots = nlohmann::json::object();
  for (const auto& [slot, r] : m_records) slots[slot] = to_json(r);
  nlohmann::json j = {{"format", kFormat}, {"slots", slots}};
  MB_TRY(m_fs.create_dirs(m_file.parent_path()));
  MB_TRY(write_file_atomic(m_fs, m_file, j.dump(1)));
  m_dirty = false;
  return {};
}

void ExplainLog::record(const std::string& slot, ExplainRecord record) {
  std::lock_guard<std::mutex> lock(m_mu);
  auto it = m_records.find(slot);
  if (it != m_records.end() && to_json(it->second) == to_json(record)) return;
  m_records[slot] = std::move(record);
  m_dirty = true;
}

std::vector<std::string> ExplainLog::explain(const std::string& slot, const ExplainRecord& now) const {
  std::lock_guard<std::mutex> lock(m_mu);
  std::vector<std::string> why;
  auto it = m_records.find(slot);
  if (it == m_records.end()) {
    why.push_back("never built before");
    return why;
  }
  const ExplainRecord& old = it->second;
  if (old.key == now.key) {
    why.push_back("its output is not in the cache (evicted, corrupt, or the cache moved)");
    return why;
  }
  if (old.kind != now.kind || old.algorithm_version != now.algorithm_version)
    why.push_back(fmt::format("the rule changed: {} v{} → {} v{}", old.kind, old.algorithm_version, now.kind,
                              now.algorithm_version));
  explain_params(old.params, now.params, why);
  explain_inputs(old.inputs, now.inputs, why);
  if (why.empty()) why.push_back("its key changed");
  return why;
}

}  // namespace mb
