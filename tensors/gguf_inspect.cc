// `modelbuild inspect FILE.gguf`: the GGUF half of inspect.h, read through
// the validating reader (docs/formats/gguf.md), so a hostile file is an
// error naming it, never a crash.
#include <algorithm>
#include <map>

#include "tensors/gguf_reader.h"
#include "tensors/inspect.h"

namespace mb {
namespace {

constexpr size_t kMaxListedArray = 8;

// Arrays past a few entries (token lists, merges) as "[N values]".
nlohmann::json shortened(const nlohmann::ordered_json& metadata) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : metadata.items()) {
    if (value.is_array() && value.size() > kMaxListedArray)
      out[key] = fmt::format("[{} values]", value.size());
    else
      out[key] = value;
  }
  return out;
}

}  // namespace

Result<Inspection> inspect_gguf(const FileSystem& fs, const fs::path& file) {
  MB_ASSIGN(GgufFile f, GgufFile::open(fs, file));
  Inspection out;
  out.kind = InspectKind::kGguf;
  out.path = file;
  out.gguf_metadata = shortened(f.metadata());
  std::map<std::string, SizeGroup> groups;
  for (const GgufTensorInfo& t : f.tensors()) {
    TensorSummary s;
    s.name = t.name;
    s.ggml_type = ggml_type_name(t.type);
    for (auto d = t.dims.rbegin(); d != t.dims.rend(); ++d) s.shape.push_back(static_cast<int64_t>(*d));
    s.logical_shape = s.shape;
    s.parameters = t.numel();
    s.bytes = t.byte_size;
    SizeGroup& g = groups[s.ggml_type];
    g.label = s.ggml_type;
    g.nominal_bits = 8.0 * static_cast<double>(ggml_type_size(t.type)) / static_cast<double>(ggml_block_size(t.type));
    ++g.tensors;
    g.parameters += s.parameters;
    g.bytes += s.bytes;
    out.parameters += s.parameters;
    out.tensor_bytes += s.bytes;
    out.tensors.push_back(std::move(s));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorSummary& a, const TensorSummary& b) { return a.name < b.name; });
  for (auto& [label, g] : groups) out.groups.push_back(g);
  out.disk_bytes = f.file_size();
  return out;
}

}  // namespace mb
