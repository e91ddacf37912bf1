#pragma once
// Tensor-by-tensor and key-by-key differences between two GGUF files, by
// name: llama.cpp's quantizer orders tensors and metadata its own way, so
// positions mean nothing; names, dims, types and bytes must all agree.
#include <fmt/format.h>

#include <set>
#include <string>
#include <vector>

#include "tensors/gguf_reader.h"

namespace mb::llama_test {

inline std::string dims_text(const std::vector<uint64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

// One line per difference (empty when the files hold the same tensors):
// a tensor in one file only, or one whose dims, type or bytes differ (the
// first differing byte and the block it falls in).
inline std::vector<std::string> tensor_differences(const GgufFile& ours, const GgufFile& ref) {
  std::vector<std::string> out;
  for (const GgufTensorInfo& r : ref.tensors()) {
    const GgufTensorInfo* o = ours.find(r.name);
    if (o == nullptr) {
      out.push_back(fmt::format("{}: only in {}", r.name, ref.path().string()));
      continue;
    }
    if (o->dims != r.dims) {
      out.push_back(fmt::format("{}: dims {} here, {} in llama.cpp's", r.name, dims_text(o->dims), dims_text(r.dims)));
    } else if (o->type != r.type) {
      out.push_back(
          fmt::format("{}: type {} here, {} in llama.cpp's", r.name, ggml_type_name(o->type), ggml_type_name(r.type)));
    } else {
      const auto a = ours.bytes(*o), b = ref.bytes(r);
      size_t i = 0;
      while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
      if (i != a.size() || a.size() != b.size())
        out.push_back(fmt::format("{} ({}): bytes differ from byte {} of {} (block {})", r.name, ggml_type_name(r.type),
                                  i, b.size(), i / ggml_type_size(r.type)));
    }
  }
  for (const GgufTensorInfo& o : ours.tensors())
    if (ref.find(o.name) == nullptr) out.push_back(fmt::format("{}: only in {}", o.name, ours.path().string()));
  return out;
}

// Keys whose values differ, or that only one file has, leaving out `ignored`.
inline std::vector<std::string> metadata_differences(const GgufFile& ours, const GgufFile& ref,
                                                     const std::set<std::string>& ignored) {
  std::vector<std::string> out;
  for (const auto& [key, value] : ref.metadata().items()) {
    if (ignored.count(key)) continue;
    if (!ours.metadata().contains(key))
      out.push_back(key + ": only in llama.cpp's");
    else if (ours.metadata()[key] != value)
      out.push_back(fmt::format("{}: {} here, {} in llama.cpp's", key, ours.metadata()[key].dump().substr(0, 80),
                                value.dump().substr(0, 80)));
  }
  for (const auto& [key, value] : ours.metadata().items())
    if (!ignored.count(key) && !ref.metadata().contains(key)) out.push_back(key + ": only here");
  return out;
}

}  // namespace mb::llama_test
