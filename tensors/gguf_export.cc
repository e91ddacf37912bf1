#include "tensors/gguf_export.h"

#include <algorithm>
#include <tuple>

#include "base/parallel.h"
#include "tensors/dtype.h"
#include "tensors/fuse.h"
#include "tensors/gguf_metadata.h"
#include "tensors/gguf_names.h"
#include "tensors/gguf_writer.h"
#include "tensors/model_dir.h"
#include "tensors/tensor_source.h"

// What is read, how it is rounded and where it goes: docs/formats/gguf.md,
// "Export".
namespace mb {
namespace {

// Values per parallel chunk: large enough that starting a chunk is noise,
// small enough that a 2-core machine still splits a 1M-value tensor.
constexpr int64_t kChunkValues = int64_t{1} << 18;
constexpr const char* kRopeFreqsName = "rope_freqs.weight";

struct PlannedTensor {
  std::string gguf_name;
  std::optional<SourceRows> rows;  // empty for rope_freqs
  std::optional<int> permute_heads;
  GgufTensorDecl decl;
  // Sort key: rope_freqs and token_embd first, the blocks by number, then the
  // output tensors.
  std::tuple<int, int, std::string> order() const {
    if (gguf_name.rfind("blk.", 0) == 0) return {1, std::stoi(gguf_name.substr(4)), gguf_name};
    if (gguf_name == kRopeFreqsName || gguf_name.rfind("token_embd", 0) == 0) return {0, 0, gguf_name};
    return {2, 0, gguf_name};
  }
};

int layer_of(const std::string& gguf_name) {
  return gguf_name.rfind("blk.", 0) == 0 ? std::stoi(gguf_name.substr(4)) : -1;
}

Result<std::vector<PlannedTensor>> plan_tensors(const TensorSource& source, const GgufModelFacts& facts,
                                                GgufFileType file_type) {
  const inference::ModelConfig& c = facts.config;
  bool tied = !source.contains("lm_head.weight");
  std::vector<PlannedTensor> plan;
  for (const std::string& name : source.names()) {
    std::optional<std::string> gguf = gguf_tensor_name(facts.arch, name);
    if (!gguf)
      return Error{Errc::kUnsupported, name,
                   fmt::format("no GGUF tensor of architecture {} for this tensor", facts.arch)};
    MB_ASSIGN(SourceRows rows, source.open(name));
    PlannedTensor p;
    p.gguf_name = *gguf;
    p.permute_heads = gguf_permuted_heads(facts.arch, name, c.num_heads, c.num_kv_heads);
    const std::vector<int64_t>& shape = rows.shape();
    if (shape.empty() || shape.size() > 2)
      return Error{Errc::kUnsupported, name, fmt::format("{}-D tensors are not exported", shape.size())};
    for (auto d = shape.rbegin(); d != shape.rend(); ++d) p.decl.dims.push_back(static_cast<uint64_t>(*d));
    if (p.permute_heads && (shape[0] % (*p.permute_heads * 2)) != 0)
      return Error{Errc::kInvalidInput, name,
                   fmt::format("{} rows do not split into {} heads", shape[0], *p.permute_heads)};
    GgufTensorShape ts{p.gguf_name,           rows.cols(),  static_cast<int>(shape.size()),
                       layer_of(p.gguf_name), c.num_layers, tied};
    p.decl.type = shape.size() == 1 ? GgmlType::kF32 : gguf_tensor_type(file_type, ts);
    p.decl.name = p.gguf_name;
    p.rows = std::move(rows);
    plan.push_back(std::move(p));
  }
  std::vector<float> freqs = gguf_rope_freqs(facts);
  if (!freqs.empty()) {
    PlannedTensor p;
    p.gguf_name = kRopeFreqsName;
    p.decl = {kRopeFreqsName, {freqs.size()}, GgmlType::kF32};
    plan.push_back(std::move(p));
  }
  std::sort(plan.begin(), plan.end(),
            [](const PlannedTensor& a, const PlannedTensor& b) { return a.order() < b.order(); });
  return plan;
}

// Row r of the GGUF tensor as float32 values of the source's dtype, into
// `out` (rounding is per element, so it commutes with the permutation).
void read_gguf_row(const PlannedTensor& p, int64_t r, std::span<float> out, SourceRows::Scratch& s) {
  const SourceRows& rows = *p.rows;
  if (p.permute_heads && rows.shape().size() == 1) {
    // A bias: its single row's elements are what moves.
    std::vector<float> raw(out.size());
    rows.read_row(0, raw, s);
    permute_rows_for_gguf(raw, static_cast<int64_t>(raw.size()), 1, *p.permute_heads, out);
  } else {
    int64_t head_dim = p.permute_heads ? rows.rows() / *p.permute_heads : 0;
    rows.read_row(p.permute_heads ? gguf_rope_source_row(r, head_dim) : r, out, s);
  }
}

Status write_planned(const PlannedTensor& p, int threads, GgufWriter& writer) {
  const SourceRows& rows = *p.rows;
  const int64_t n_rows = rows.rows(), cols = rows.cols();
  const size_t row_bytes = ggml_row_size(p.decl.type, cols);
  std::vector<uint8_t> encoded(row_bytes * static_cast<size_t>(n_rows));
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkValues / std::max<int64_t>(cols, 1));
  const int64_t chunks = (n_rows + chunk_rows - 1) / chunk_rows;
  MB_TRY(parallel_for(chunks, threads, [&](int64_t chunk) -> Status {
    const int64_t r0 = chunk * chunk_rows, r1 = std::min(n_rows, r0 + chunk_rows);
    std::vector<float> values(static_cast<size_t>((r1 - r0) * cols));
    SourceRows::Scratch scratch = rows.make_scratch();
    for (int64_t r = r0; r < r1; ++r)
      read_gguf_row(p, r, std::span(values).subspan(static_cast<size_t>((r - r0) * cols), cols), scratch);
    quantize_rows_into(p.decl.type, values.data(), r1 - r0, cols, encoded.data() + r0 * row_bytes);
    return {};
  }));
  return writer.write_raw(p.gguf_name, encoded);
}

std::string default_name(const nlohmann::ordered_json& config, const GgufModelFacts& facts) {
  const auto& archs = config.find("architectures");
  if (archs != config.end() && archs->is_array() && !archs->empty() && (*archs)[0].is_string())
    return (*archs)[0].get<std::string>();
  return facts.arch;
}

}  // namespace

Result<GgufExportStats> export_gguf(FileSystem& fs, const TensorSource& source, const fs::path& out_file,
                                    const GgufExportOptions& options) {
  const fs::path& model_dir = source.dir();
  MB_ASSIGN(GgufModelFacts facts, gguf_model_facts(source.config(), (model_dir / "config.json").string()));
  MB_ASSIGN(std::vector<PlannedTensor> plan, plan_tensors(source, facts, options.file_type));
  bool any_quantized = std::any_of(plan.begin(), plan.end(), [](const PlannedTensor& p) {
    return p.decl.type != GgmlType::kF32 && p.decl.type != GgmlType::kF16 && p.decl.type != GgmlType::kBF16;
  });
  std::string name = options.name.empty() ? default_name(source.config(), facts) : options.name;
  GgufMetadata md;
  add_gguf_arch_metadata(md, facts, name, options.file_type, any_quantized);
  MB_TRY(add_gguf_tokenizer_metadata(md, fs, model_dir, facts, source.config()));
  std::vector<GgufTensorDecl> decls;
  for (const PlannedTensor& p : plan) decls.push_back(p.decl);
  MB_ASSIGN(std::unique_ptr<GgufWriter> writer, GgufWriter::create(fs, out_file, md, decls));
  const int threads = resolve_threads(options.threads);
  GgufExportStats stats;
  for (const PlannedTensor& p : plan) {
    if (p.rows) {
      MB_TRY(write_planned(p, threads, *writer));
    } else {
      MB_TRY(writer->write_tensor(p.gguf_name, gguf_rope_freqs(facts)));
    }
    ++stats.tensors_per_type[ggml_type_name(p.decl.type)];
  }
  MB_TRY(writer->finish());
  stats.bytes = writer->file_size();
  return stats;
}

Result<GgufExportStats> export_gguf(FileSystem& fs, const fs::path& model_dir, const fs::path& out_file,
                                    const GgufExportOptions& options) {
  MB_ASSIGN(std::unique_ptr<TensorSource> source, TensorSource::open_model(fs, model_dir));
  return export_gguf(fs, *source, out_file, options);
}

Result<GgufExportStats> export_gguf(const fs::path& model_dir, const fs::path& out_file,
                                    const GgufExportOptions& options) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  return export_gguf(*fs, model_dir, out_file, options);
}

}  // namespace mb
