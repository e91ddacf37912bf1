#include "tensors/gguf_export.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "base/temp_dir.h"
#include "base/test_paths.h"
#include "tensors/dtype.h"
#include "tensors/fuse.h"
#include "tensors/fuse_test_support.h"
#include "tensors/gguf_names.h"
#include "tensors/gguf_reader.h"
#include "tensors/inspect.h"
#include "tensors/model_dir.h"

namespace mb {
namespace {

fs::path tiny_model() { return test::source_dir() / "examples/tiny/models/base-4bit"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

GgufFile export_tiny(const fs::path& out, GgufFileType type, int threads = 0) {
  GgufExportOptions options;
  options.file_type = type;
  options.threads = threads;
  Result<GgufExportStats> stats = export_gguf(tiny_model(), out, options);
  EXPECT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(stats.value().bytes, fs::file_size(out));
  Result<GgufFile> f = GgufFile::open(out);
  EXPECT_TRUE(f) << f.error().to_string();
  return std::move(f).value();
}

std::vector<float> dequantized(const GgufFile& f, const GgufTensorInfo& t) {
  std::vector<float> v(t.numel());
  dequantize_rows(t.type, f.bytes(t).data(), static_cast<int64_t>(t.rows()), static_cast<int64_t>(t.row_length()),
                  v.data());
  return v;
}

// The source tensor as the export should see it: dequantized, rounded to
// the model's dtype (bf16 for the tiny model).
std::vector<float> source_values(const ModelDir& model, const std::string& hf_name) {
  Result<WeightRows> rows = WeightRows::open(model, hf_name);
  EXPECT_TRUE(rows) << hf_name;
  std::vector<float> v(static_cast<size_t>(rows->rows() * rows->cols()));
  WeightRows::Scratch s = rows->make_scratch();
  for (int64_t r = 0; r < rows->rows(); ++r)
    rows->read_row(r, std::span(v).subspan(static_cast<size_t>(r * rows->cols()), rows->cols()), s);
  round_to_dtype(std::span(v), default_dtype(model));
  return v;
}

double relative_rms_error(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return norm == 0 ? std::sqrt(err) : std::sqrt(err / norm);
}

TEST(GgufExport, TinyF16RoundTrips) {
  TempDir dir;
  GgufFile f = export_tiny(dir.path() / "m.gguf", GgufFileType::kF16);
  std::unique_ptr<FileSystem> rfs = make_real_file_system();
  ModelDir model = ModelDir::open(*rfs, tiny_model()).value();
  // 4 layers x (attn_norm, q/k/v weight+bias, output, ffn_norm, gate/up/down) + token_embd + output_norm (tied).
  EXPECT_EQ(f.tensors().size(), 4u * 12 + 2);
  EXPECT_EQ(f.find("output.weight"), nullptr);
  EXPECT_EQ(f.metadata()["general.architecture"], "qwen2");
  EXPECT_EQ(f.metadata()["general.name"], "Qwen2ForCausalLM");
  EXPECT_EQ(f.metadata()["general.file_type"], 1);
  EXPECT_EQ(f.metadata()["tokenizer.ggml.tokens"].size(), 1024u);
  EXPECT_EQ(f.tensors()[0].name, "token_embd.weight");
  std::set<std::string> seen;
  for (const TensorRef& t : model.weights().tensors()) {
    if (is_quant_companion(model, t.info->name)) continue;
    std::string gguf = gguf_tensor_name("qwen2", t.info->name).value();
    const GgufTensorInfo* g = f.find(gguf);
    ASSERT_NE(g, nullptr) << gguf;
    seen.insert(gguf);
    std::vector<float> want = source_values(model, t.info->name);
    EXPECT_EQ(g->type, g->dims.size() == 1 ? GgmlType::kF32 : GgmlType::kF16) << gguf;
    EXPECT_EQ(g->numel(), want.size());
    // bf16 values are exact in f16 (for these magnitudes) and in f32.
    EXPECT_EQ(dequantized(f, *g), want) << gguf;
  }
  EXPECT_EQ(seen.size(), f.tensors().size());
  const GgufTensorInfo* q = f.find("blk.0.attn_q.weight");
  EXPECT_EQ(q->dims, (std::vector<uint64_t>{128, 128}));
  EXPECT_EQ(f.find("blk.0.attn_k.weight")->dims, (std::vector<uint64_t>{128, 64}));
}

// The rule: Q8_0 of the export equals llama.cpp's quantizer (here,
// ours, which is bit-exact with it) run on the F16 export.
TEST(GgufExport, Q8_0EqualsQuantizingTheF16File) {
  TempDir dir;
  GgufFile f16 = export_tiny(dir.path() / "f16.gguf", GgufFileType::kF16);
  GgufFile q8 = export_tiny(dir.path() / "q8.gguf", GgufFileType::kQ8_0);
  EXPECT_EQ(q8.metadata()["general.file_type"], 7);
  EXPECT_EQ(q8.metadata()["general.quantization_version"], 2);
  ASSERT_EQ(q8.tensors().size(), f16.tensors().size());
  for (const GgufTensorInfo& t : q8.tensors()) {
    const GgufTensorInfo* src = f16.find(t.name);
    ASSERT_NE(src, nullptr) << t.name;
    EXPECT_EQ(t.type, t.dims.size() == 1 ? GgmlType::kF32 : GgmlType::kQ8_0) << t.name;
    std::vector<float> values = dequantized(f16, *src);
    std::vector<uint8_t> want =
        quantize_rows(t.type, values.data(), static_cast<int64_t>(t.rows()), static_cast<int64_t>(t.row_length()));
    std::span<const uint8_t> got = q8.bytes(t);
    ASSERT_EQ(got.size(), want.size()) << t.name;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), want.begin())) << t.name;
    EXPECT_LT(relative_rms_error(dequantized(q8, t), values), 0.01) << t.name;
  }
}

TEST(GgufExport, Q4KMTypesAndValues) {
  TempDir dir;
  GgufFile f16 = export_tiny(dir.path() / "f16.gguf", GgufFileType::kF16);
  GgufFile q4 = export_tiny(dir.path() / "q4.gguf", GgufFileType::kQ4_K_M);
  EXPECT_EQ(q4.metadata()["general.file_type"], 15);
  std::set<GgmlType> types;
  for (const GgufTensorInfo& t : q4.tensors()) {
    types.insert(t.type);
    if (t.dims.size() == 1) {
      EXPECT_EQ(t.type, GgmlType::kF32);
      continue;
    }
    // Rows of 128 and 384 values: no 256-wide super-block divides them, so
    // these are the fallback types.
    double err = relative_rms_error(dequantized(q4, t), dequantized(f16, *f16.find(t.name)));
    EXPECT_LT(err, 0.15) << t.name << " " << ggml_type_name(t.type);
  }
  EXPECT_GT(types.size(), 2u) << "Q4_K_M mixes types";
}

TEST(GgufExport, BytesDoNotDependOnThreads) {
  TempDir dir;
  export_tiny(dir.path() / "a.gguf", GgufFileType::kQ4_K_M, 1);
  export_tiny(dir.path() / "b.gguf", GgufFileType::kQ4_K_M, 3);
  EXPECT_EQ(slurp(dir.path() / "a.gguf"), slurp(dir.path() / "b.gguf"));
}

TEST(GgufExport, MissingTokenizerFailsAndLeavesNothing) {
  TempDir dir;
  fs::path model = dir.path() / "model";
  fs::create_directories(model);
  for (const char* f : {"config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json"})
    fs::copy_file(tiny_model() / f, model / f);
  fs::path out = dir.path() / "out" / "m.gguf";
  fs::create_directories(out.parent_path());
  Result<GgufExportStats> s = export_gguf(model, out, {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kInvalidInput);
  EXPECT_NE(s.error().to_string().find("tokenizer_config.json"), std::string::npos) << s.error().to_string();
  EXPECT_TRUE(fs::is_empty(out.parent_path()));
}

// A small float Llama: q/k rows must arrive permuted, the rest unchanged.
TEST(GgufExport, LlamaPermutesQueryAndKeyRows) {
  TempDir dir;
  std::unique_ptr<FileSystem> rfs = make_real_file_system();
  fuse_test::ModelSpec spec = fuse_test::tiny_llama(DType::kF16);
  spec.config["torch_dtype"] = "float16";
  fs::path model = dir.path() / "llama";
  fuse_test::write_model(*rfs, model, spec);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(tiny_model() / f, model / f, fs::copy_options::overwrite_existing);
  GgufExportOptions options;
  Result<GgufExportStats> stats = export_gguf(model, dir.path() / "l.gguf", options);
  ASSERT_TRUE(stats) << stats.error().to_string();
  GgufFile f = GgufFile::open(dir.path() / "l.gguf").value();
  EXPECT_EQ(f.metadata()["tokenizer.ggml.pre"], "llama-bpe");
  EXPECT_EQ(f.metadata()["llama.rope.dimension_count"], 16);
  ModelDir md = ModelDir::open(*rfs, model).value();
  for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
    std::string hf = std::string("model.layers.1.self_attn.") + proj + ".weight";
    const GgufTensorInfo* t = f.find(gguf_tensor_name("llama", hf).value());
    ASSERT_NE(t, nullptr) << hf;
    std::vector<float> want = source_values(md, hf), got = dequantized(f, *t);
    const int64_t rows = static_cast<int64_t>(t->rows()), cols = 64;
    if (std::string(proj) == "v_proj") {
      EXPECT_EQ(got, want);
      continue;
    }
    std::vector<float> expect(want.size()), back(want.size());
    permute_rows_for_gguf(want, rows, cols, std::string(proj) == "q_proj" ? 4 : 2, expect);
    EXPECT_EQ(got, expect) << hf;
    EXPECT_NE(got, want) << hf;
    unpermute_rows_from_gguf(got, rows, cols, std::string(proj) == "q_proj" ? 4 : 2, back);
    EXPECT_EQ(back, want) << hf;
  }
}

TEST(GgufExport, UnmappedTensorIsNamed) {
  TempDir dir;
  std::unique_ptr<FileSystem> rfs = make_real_file_system();
  fuse_test::ModelSpec spec = fuse_test::tiny_qwen(DType::kF16);
  spec.tensors.push_back(
      {"model.layers.0.mlp.experts.weight", DType::kF16, {4, 64}, fuse_test::make_values(256, 3, 1)});
  spec.config = nlohmann::ordered_json::parse(slurp(tiny_model() / "config.json"));
  spec.config.erase("quantization");
  spec.config.erase("quantization_config");
  fs::path model = dir.path() / "m";
  fuse_test::write_model(*rfs, model, spec);
  Result<GgufExportStats> s = export_gguf(model, dir.path() / "x.gguf", {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kUnsupported);
  EXPECT_EQ(s.error().where, "model.layers.0.mlp.experts.weight");
}

TEST(GgufInspect, TypesBitsMetadataAndSize) {
  TempDir dir;
  export_tiny(dir.path() / "q8.gguf", GgufFileType::kQ8_0);
  std::unique_ptr<FileSystem> rfs = make_real_file_system();
  Result<Inspection> in = inspect(*rfs, dir.path() / "q8.gguf");
  ASSERT_TRUE(in) << in.error().to_string();
  EXPECT_EQ(in->kind, InspectKind::kGguf);
  EXPECT_EQ(in->disk_bytes, fs::file_size(dir.path() / "q8.gguf"));
  ASSERT_EQ(in->groups.size(), 2u);
  EXPECT_EQ(in->groups[1].label, "q8_0");
  EXPECT_EQ(in->groups[1].nominal_bits, 8.5);
  EXPECT_EQ(in->gguf_metadata["tokenizer.ggml.tokens"], "[1024 values]");
  EXPECT_EQ(in->gguf_metadata["general.architecture"], "qwen2");
  std::string text = render_inspection(*in, true);
  EXPECT_NE(text.find("blk.0.attn_q.weight  q8_0 [128, 128]"), std::string::npos) << text;
  EXPECT_NE(text.find("general.file_type = 7"), std::string::npos) << text;
  EXPECT_EQ(in->to_json()["kind"], "gguf");
  // A truncated file is an error naming it.
  fs::resize_file(dir.path() / "q8.gguf", 1000);
  Result<Inspection> bad = inspect(*rfs, dir.path() / "q8.gguf");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kCorrupt);
  EXPECT_NE(bad.error().where.find("q8.gguf"), std::string::npos);
}

}  // namespace
}  // namespace mb
