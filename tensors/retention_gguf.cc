#include "tensors/retention_gguf.h"

#include <map>

#include "base/parallel.h"
#include "base/reporter.h"
#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/ggml_quants.h"
#include "tensors/gguf_names.h"
#include "tensors/gguf_reader.h"

namespace mb {
namespace {

struct GgufRows {
  const GgufTensorInfo* info = nullptr;
  size_t row_bytes = 0;
  int64_t head_dim = 0;  // > 0: llama's permuted rows
};

Result<GgufRows> gguf_rows(const GgufFile& file, const std::string& arch, const std::string& name, int64_t rows,
                           int64_t cols, std::pair<int, int> heads) {
  const std::string where = file.path().string();
  const std::optional<std::string> gname = gguf_tensor_name(arch, name);
  const GgufTensorInfo* t = gname ? file.find(*gname) : nullptr;
  if (!t)
    return make_error(Errc::kInvalidInput, where, "the file has no tensor for {} ({}), which the adapters change", name,
                      gname.value_or("no GGUF name"));
  uint64_t n = 1;
  for (size_t i = 1; i < t->dims.size(); ++i) n *= t->dims[i];
  if (t->dims.empty() || t->dims[0] != static_cast<uint64_t>(cols) || n != static_cast<uint64_t>(rows))
    return make_error(Errc::kInvalidInput, where, "tensor {} does not have the base's shape [{}, {}] of {}", *gname,
                      rows, cols, name);
  GgufRows g{t, ggml_row_size(t->type, cols), 0};
  if (auto h = gguf_permuted_heads(arch, name, heads.first, heads.second)) g.head_dim = rows / *h;
  return g;
}

}  // namespace

Result<RetentionReport> measure_gguf_retention(const FileSystem& fs, const fs::path& gguf_file,
                                               const fs::path& base_dir, const std::vector<Adapter>& adapters,
                                               const std::string& what, int bits, int threads, Reporter& reporter) {
  MB_ASSIGN(GgufFile file, GgufFile::open(fs, gguf_file));
  MB_ASSIGN(const std::string arch, gguf_architecture(file));
  MB_ASSIGN(auto heads, gguf_head_counts(file, arch));
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
    const std::string& name = entry.first;
    const auto& modules = entry.second;
    MB_ASSIGN(WeightRows w0, WeightRows::open(base, name));
    MB_ASSIGN(GgufRows g, gguf_rows(file, arch, name, w0.rows(), w0.cols(), heads));
    const std::span<const uint8_t> bytes = file.bytes(*g.info);
    const int64_t cols = w0.cols(), per = row_chunk_rows(w0.rows(), cols);
    std::vector<RetentionSums> sums(static_cast<size_t>((w0.rows() + per - 1) / per));
    MB_TRY(for_each_row_chunk(w0.rows(), cols, threads, [&](int64_t chunk, int64_t begin, int64_t end) -> Status {
      const size_t c = static_cast<size_t>(cols);
      std::vector<float> base_row(c), target_row(c), result_row(c), scratch(c);
      WeightRows::Scratch base_scratch = w0.make_scratch();
      RetentionSums& s = sums[static_cast<size_t>(chunk)];
      for (int64_t r = begin; r < end; ++r) {
        const int64_t gr = g.head_dim > 0 ? gguf_rope_target_row(r, g.head_dim) : r;
        w0.read_row(r, base_row, base_scratch);
        dequantize_rows(g.info->type, bytes.data() + static_cast<size_t>(gr) * g.row_bytes, 1, cols, result_row.data());
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
