#include "tensors/model_weights.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

namespace mb {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// A weight_map value must name a file inside the model directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

}  // namespace

Result<ModelWeights> ModelWeights::open(const FileSystem& fs, const fs::path& dir) {
  fs::path index_path = dir / kIndexFileName;
  auto index_stat = fs.stat(index_path);
  if (!index_stat.ok() && index_stat.error().code != Errc::kNotFound) return index_stat.error();

  if (!index_stat.ok()) {
    // No index: every model*.safetensors, as mlx_lm's loader globs them.
    MB_ASSIGN(std::vector<std::string> names, fs.list_dir(dir));
    std::vector<fs::path> files;
    for (const std::string& n : names)
      if (starts_with(n, "model") && ends_with(n, ".safetensors")) files.push_back(dir / n);
    if (files.empty())
      return make_error(Errc::kNotFound, dir.string(), "no {} and no model*.safetensors files", kIndexFileName);
    return open_files(fs, files);
  }

  std::string where = index_path.string();
  MB_ASSIGN(std::string text, fs.read_file(index_path));
  nlohmann::json index = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) return make_error(Errc::kCorrupt, where, "not a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object()) return make_error(Errc::kCorrupt, where, "missing \"weight_map\" object");

  // Shards in file-name order; each one's expected tensors.
  std::map<std::string, std::set<std::string>> expected;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it->is_string() || !is_plain_file_name(it->get_ref<const std::string&>()))
      return make_error(Errc::kCorrupt, where, "weight_map entry '{}' does not name a file in the directory", it.key());
    expected[it->get<std::string>()].insert(it.key());
  }
  std::vector<fs::path> files;
  for (const auto& [file, _] : expected) files.push_back(dir / file);
  MB_ASSIGN(ModelWeights weights, open_files(fs, files));

  for (size_t s = 0; s < weights.m_shards.size(); ++s) {
    const SafetensorsFile& shard = *weights.m_shards[s];
    const std::set<std::string>& want = expected[files[s].filename().string()];
    for (const std::string& name : want)
      if (!shard.find(name))
        return make_error(Errc::kCorrupt, where, "tensor '{}' is mapped to {} but that shard does not contain it", name,
                          files[s].filename().string());
    for (const TensorInfo& t : shard.tensors())
      if (!want.count(t.name))
        return make_error(Errc::kCorrupt, where, "tensor '{}' in shard {} is missing from the weight_map", t.name,
                          files[s].filename().string());
  }
  return weights;
}

Result<ModelWeights> ModelWeights::open_files(const FileSystem& fs, const std::vector<fs::path>& files) {
  ModelWeights weights;
  for (const fs::path& f : files) {
    MB_ASSIGN(SafetensorsFile file, SafetensorsFile::open(fs, f));
    weights.m_shards.push_back(std::make_unique<SafetensorsFile>(std::move(file)));
  }
  MB_TRY(weights.build_index());
  return weights;
}

Status ModelWeights::build_index() {
  struct Item {
    TensorRef ref;
    int shard;
  };
  std::vector<Item> items;
  for (size_t s = 0; s < m_shards.size(); ++s)
    for (const TensorInfo& t : m_shards[s]->tensors())
      items.push_back({{&t, m_shards[s]->data(t)}, static_cast<int>(s)});
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    if (a.ref.info->name != b.ref.info->name) return a.ref.info->name < b.ref.info->name;
    return a.shard < b.shard;
  });
  for (size_t i = 1; i < items.size(); ++i)
    if (items[i].ref.info->name == items[i - 1].ref.info->name)
      return make_error(Errc::kCorrupt, m_shards[items[i].shard]->where(), "tensor '{}' also appears in {}",
                        items[i].ref.info->name, m_shards[items[i - 1].shard]->where());
  m_sorted.clear();
  m_sorted_shard.clear();
  for (const Item& it : items) {
    m_sorted.push_back(it.ref);
    m_sorted_shard.push_back(it.shard);
  }
  return {};
}

TensorRef ModelWeights::find(std::string_view name) const {
  int s = shard_of(name);
  if (s < 0) return {};
  auto it = std::lower_bound(m_sorted.begin(), m_sorted.end(), name,
                             [](const TensorRef& r, std::string_view n) { return std::string_view(r.info->name) < n; });
  return *it;
}

int ModelWeights::shard_of(std::string_view name) const {
  auto it = std::lower_bound(m_sorted.begin(), m_sorted.end(), name,
                             [](const TensorRef& r, std::string_view n) { return std::string_view(r.info->name) < n; });
  if (it == m_sorted.end() || it->info->name != name) return -1;
  return m_sorted_shard[static_cast<size_t>(it - m_sorted.begin())];
}

}  // namespace mb
