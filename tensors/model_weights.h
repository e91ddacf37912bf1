#pragma once
// ModelWeights: every tensor of a model directory, across its shards.
//
// A model directory holds either model.safetensors.index.json plus the
// shards its weight_map names (each weight_map entry must exist in its
// shard, each shard tensor must be in the weight_map, and no tensor may
// appear twice), or, without an index, every model*.safetensors file (what
// mlx_lm loads; a lone model.safetensors is the common case). Shards are
// memory-mapped, so opening a 70 GB model costs address space only.
//
// Immutable after open(); any number of threads may read it. TensorRefs
// stay valid as long as the ModelWeights (moving it keeps them valid).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"
#include "tensors/safetensors.h"

namespace mb {

inline constexpr const char* kIndexFileName = "model.safetensors.index.json";

class ModelWeights {
 public:
  // Errc::kNotFound when `dir` has neither an index nor model*.safetensors.
  static Result<ModelWeights> open(const FileSystem& fs, const fs::path& dir);
  // Treats the given safetensors files as one set of weights (e.g. an
  // adapters.safetensors); duplicate names across files are kCorrupt.
  static Result<ModelWeights> open_files(const FileSystem& fs, const std::vector<fs::path>& files);

  // Null TensorRef when absent.
  TensorRef find(std::string_view name) const;
  bool contains(std::string_view name) const { return static_cast<bool>(find(name)); }
  // Every tensor, sorted by name.
  const std::vector<TensorRef>& tensors() const { return m_sorted; }
  size_t size() const { return m_sorted.size(); }
  // The shard holding `name` (index into shards()), or -1.
  int shard_of(std::string_view name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return m_shards; }

 private:
  Status build_index();

  std::vector<std::unique_ptr<SafetensorsFile>> m_shards;
  std::vector<TensorRef> m_sorted;
  std::vector<int> m_sorted_shard;  // parallel to m_sorted
};

}  // namespace mb
