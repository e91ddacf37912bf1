#include "tensors/tensor_source.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/reporter.h"
#include "base/temp_dir.h"
#include "base/test_paths.h"
#include "tensors/fuse.h"
#include "tensors/fuse_test_support.h"
#include "tensors/gguf_export.h"

namespace mb {
namespace {

fs::path tiny_base() { return test::source_dir() / "examples/tiny/models/base-4bit"; }
fs::path tiny_adapter() { return test::source_dir() / "examples/tiny/adapters/tools-lora"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The two-step export (fuse_model to a float model on disk, then
// export_gguf of it) and the one-pass export (a fused TensorSource) of
// `base` + `adapters` must write the same bytes: the quantizer tests pin the
// two-step bytes to llama.cpp's, so this carries that guarantee over.
void expect_same_bytes(const fs::path& base, const std::vector<fs::path>& adapter_dirs, GgufFileType type,
                       std::optional<DType> dtype) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  NullReporter reporter;
  Result<std::vector<Adapter>> adapters = load_adapters(*fs, adapter_dirs);
  ASSERT_TRUE(adapters) << adapters.error().to_string();
  TempDir dir;
  const fs::path fused = dir.path() / "fused";
  fs::create_directories(fused);
  FuseOptions fo;
  fo.dtype = dtype;
  Result<FuseResult> fr = fuse_model(*fs, base, *adapters, fused, fo, reporter);
  ASSERT_TRUE(fr) << fr.error().to_string();
  ASSERT_GT(fr->adapted, 0);
  GgufExportOptions eo;
  eo.file_type = type;
  Result<GgufExportStats> two = export_gguf(*fs, fused, dir.path() / "two.gguf", eo);
  ASSERT_TRUE(two) << two.error().to_string();

  Result<std::unique_ptr<TensorSource>> src = TensorSource::open_fused(*fs, base, *adapters, dtype, reporter);
  ASSERT_TRUE(src) << src.error().to_string();
  eo.threads = 2;  // and another thread count than the two-step's
  Result<GgufExportStats> one = export_gguf(*fs, **src, dir.path() / "one.gguf", eo);
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(one->bytes, two->bytes);
  EXPECT_EQ(one->tensors_per_type, two->tensors_per_type);
  const std::string a = slurp(dir.path() / "one.gguf"), b = slurp(dir.path() / "two.gguf");
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b) << "one-pass and two-step GGUF (file type " << gguf_file_type_id(type) << ") differ";
}

void expect_one_pass_equals_two_step(GgufFileType type, std::optional<DType> dtype) {
  expect_same_bytes(tiny_base(), {tiny_adapter()}, type, dtype);
}

TEST(TensorSource, OnePassGgufF16EqualsTwoStep) { expect_one_pass_equals_two_step(GgufFileType::kF16, DType::kF16); }
TEST(TensorSource, OnePassGgufQ8_0EqualsTwoStep) { expect_one_pass_equals_two_step(GgufFileType::kQ8_0, DType::kF16); }
TEST(TensorSource, OnePassGgufQ4KMEqualsTwoStep) {
  expect_one_pass_equals_two_step(GgufFileType::kQ4_K_M, DType::kF16);
}
// dtype auto: the 4-bit base's scales dtype (bf16), exported as F16.
TEST(TensorSource, OnePassGgufDefaultDtypeEqualsTwoStep) {
  expect_one_pass_equals_two_step(GgufFileType::kF16, std::nullopt);
}

// A float32 llama base without torch_dtype (the export's dtype then comes
// from the fused weights) and a LoRA on the q/k projections, whose GGUF
// rows llama.cpp permutes: fusing commutes with the permutation.
TEST(TensorSource, OnePassEqualsTwoStepOnAFloatLlamaWithPermutedAdaptedRows) {
  TempDir dir;
  std::unique_ptr<FileSystem> rfs = make_real_file_system();
  fuse_test::ModelSpec spec = fuse_test::tiny_llama(DType::kF32);
  const fs::path model = dir.path() / "llama";
  fuse_test::write_model(*rfs, model, spec);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(tiny_base() / f, model / f, fs::copy_options::overwrite_existing);
  const fs::path lora = dir.path() / "lora";
  fuse_test::write_mlx_adapter(*rfs, lora,
                               {fuse_test::make_module("model.layers.0.self_attn.k_proj", 32, 64, 4, 2.0f, 5),
                                fuse_test::make_module("model.layers.0.self_attn.q_proj", 64, 64, 4, 2.0f, 3),
                                fuse_test::make_module("model.layers.1.mlp.down_proj", 64, 128, 4, 2.0f, 7)});
  for (GgufFileType type : {GgufFileType::kF16, GgufFileType::kQ8_0, GgufFileType::kQ4_K_M}) {
    expect_same_bytes(model, {lora}, type, DType::kBF16);
    expect_same_bytes(model, {lora}, type, std::nullopt);  // f32 fusion
  }
}

// The fused source differs from the base: the adapted rows carry the delta.
TEST(TensorSource, FusedRowsCarryTheAdapter) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  NullReporter reporter;
  std::vector<Adapter> adapters = load_adapters(*fs, {tiny_adapter()}).value();
  auto fused = TensorSource::open_fused(*fs, tiny_base(), adapters, DType::kF16, reporter);
  auto plain = TensorSource::open_model(*fs, tiny_base());
  ASSERT_TRUE(fused && plain);
  EXPECT_EQ((*fused)->names(), (*plain)->names());
  const std::string name = adapters[0].modules[0].weight_name();
  SourceRows a = (*fused)->open(name).value(), b = (*plain)->open(name).value();
  EXPECT_TRUE(a.adapted());
  EXPECT_FALSE(b.adapted());
  std::vector<float> ra(static_cast<size_t>(a.cols())), rb(ra.size());
  SourceRows::Scratch sa = a.make_scratch(), sb = b.make_scratch();
  bool differs = false;
  for (int64_t r = 0; r < a.rows() && !differs; ++r) {
    a.read_row(r, ra, sa);
    b.read_row(r, rb, sb);
    differs = ra != rb;
  }
  EXPECT_TRUE(differs);
}

TEST(TensorSource, FusedRejectsAnIntegerDtype) {
  std::unique_ptr<FileSystem> fs = make_real_file_system();
  NullReporter reporter;
  std::vector<Adapter> adapters;
  auto s = TensorSource::open_fused(*fs, tiny_base(), adapters, DType::kI32, reporter);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kInvalidInput);
}

}  // namespace
}  // namespace mb
