// Retention read back from a GGUF file's bytes: the figure is the one
// computed by hand from the same quantized rows, and llama's permuted q/k
// rows line up with the base's.
#include "tensors/retention_gguf.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "base/reporter.h"
#include "tensors/adapters.h"
#include "tensors/fuse_test_support.h"
#include "tensors/ggml_quants.h"
#include "tensors/gguf_names.h"
#include "tensors/gguf_writer.h"

namespace mb {
namespace {

using namespace fuse_test;  // NOLINT: test helpers

constexpr int kHeads = 4, kKvHeads = 2;

class GgufRetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = tiny_qwen(DType::kF32);
    write_model(fs_, "/base", base_);
    modules_ = {make_module("model.layers.0.self_attn.q_proj", 64, 64, 4, 2.0f, 11),
                make_module("model.layers.1.self_attn.k_proj", 32, 64, 4, 2.0f, 12)};
    write_mlx_adapter(fs_, "/lora", modules_);
    auto a = load_adapter(fs_, "/lora");
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    adapters_.push_back(std::move(*a));
  }
  const FloatTensor& base_tensor(const std::string& name) const {
    for (const FloatTensor& t : base_.tensors)
      if (t.name == name) return t;
    throw std::runtime_error(name);
  }
  // W* of one adapted tensor, [rows, cols] in the Hugging Face row order.
  std::vector<float> fused(const LoraModule& m) const {
    const FloatTensor& w0 = base_tensor(m.weight_name());
    std::vector<float> out(w0.values.size()), scratch(static_cast<size_t>(m.in));
    const LoraModule* mods[] = {&m};
    for (int64_t r = 0; r < m.out; ++r)
      fuse_row(mods, r, std::span<const float>(w0.values).subspan(static_cast<size_t>(r * m.in), m.in),
               std::span<float>(out).subspan(static_cast<size_t>(r * m.in), m.in), scratch);
    return out;
  }
  // Writes a GGUF file holding each adapted tensor as Q8_0 (permuted for
  // llama, as the export writes it).
  void write_gguf(const std::string& arch, const fs::path& path) {
    GgufMetadata md;
    md.add_string("general.architecture", arch);
    md.add_u32(arch + ".attention.head_count", kHeads);
    md.add_u32(arch + ".attention.head_count_kv", kKvHeads);
    std::vector<GgufTensorDecl> decls;
    for (const LoraModule& m : modules_)
      decls.push_back({*gguf_tensor_name(arch, m.weight_name()),
                       {static_cast<uint64_t>(m.in), static_cast<uint64_t>(m.out)},
                       GgmlType::kQ8_0});
    auto w = GgufWriter::create(fs_, path, md, decls);
    ASSERT_TRUE(w.ok()) << w.error().to_string();
    for (const LoraModule& m : modules_) {
      std::vector<float> v = fused(m), p(v.size());
      if (auto h = gguf_permuted_heads(arch, m.weight_name(), kHeads, kKvHeads)) {
        permute_rows_for_gguf(v, m.out, m.in, *h, p);
        v = p;
      }
      ASSERT_TRUE((*w)->write_tensor(*gguf_tensor_name(arch, m.weight_name()), v).ok());
    }
    ASSERT_TRUE((*w)->finish().ok());
  }
  // The figure by hand: Q8_0 round trip of W*, summed over the whole tensor.
  double expected_retained() const {
    RetentionSums total;
    for (const LoraModule& m : modules_) {
      const std::vector<float> target = fused(m);
      std::vector<uint8_t> q = quantize_rows(GgmlType::kQ8_0, target.data(), m.out, m.in);
      std::vector<float> back(target.size());
      dequantize_rows(GgmlType::kQ8_0, q.data(), m.out, m.in, back.data());
      total.add(base_tensor(m.weight_name()).values, target, back);
    }
    return 1.0 - std::sqrt(total.error_sq) / std::sqrt(total.delta_sq);
  }

  MemoryFileSystem fs_;
  RecordingReporter reporter_;
  ModelSpec base_;
  std::vector<LoraModule> modules_;
  std::vector<Adapter> adapters_;
};

TEST_F(GgufRetentionTest, MeasuresTheFilesOwnRowsInEitherRowOrder) {
  const double want = expected_retained();
  ASSERT_GT(want, 0.5);
  ASSERT_LT(want, 1.0);
  for (const std::string arch : {"qwen2", "llama"}) {
    const fs::path path = "/" + arch + ".gguf";
    write_gguf(arch, path);
    for (int threads : {1, 3}) {
      auto r = measure_gguf_retention(fs_, path, "/base", adapters_, "GGUF Q8_0 export", 8, threads, reporter_);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      ASSERT_EQ(r->tensors.size(), 2u);
      EXPECT_NEAR(*r->retained(), want, 1e-9) << arch;
      EXPECT_EQ(r->bits, 8);
      EXPECT_EQ(r->what, "GGUF Q8_0 export");
    }
  }
}

TEST_F(GgufRetentionTest, AWeightTheFileLacksIsNamed) {
  modules_.push_back(make_module("model.layers.0.mlp.up_proj", 128, 64, 4, 2.0f, 13));
  write_mlx_adapter(fs_, "/lora2", modules_);
  auto a = load_adapter(fs_, "/lora2");
  ASSERT_TRUE(a.ok());
  modules_.pop_back();
  write_gguf("qwen2", "/q.gguf");
  auto r = measure_gguf_retention(fs_, "/q.gguf", "/base", {*a}, "x", 8, 1, reporter_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_NE(r.error().message.find("model.layers.0.mlp.up_proj.weight"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message.find("blk.0.ffn_up.weight"), std::string::npos) << r.error().to_string();
}

}  // namespace
}  // namespace mb
