#include "tensors/quantize_model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/fs_test_support.h"
#include "base/reporter.h"
#include "tensors/fuse.h"
#include "tensors/fuse_test_support.h"

namespace mb {
namespace {

using namespace fuse_test;  // NOLINT: test helpers

class QuantizeModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = tiny_qwen(DType::kBF16);
    // A Linear whose input dimension (48) no group size divides.
    spec_.tensors.push_back({"model.layers.0.mlp.odd_proj.weight", DType::kBF16, {8, 48}, make_values(384, 9, 0.1f)});
    write_model(fs_, "/float", spec_);
  }

  Result<ConvertResult> quantize(const fs::path& in, const fs::path& out, const QuantizeOptions& options,
                                 const RetentionReference* ref = nullptr) {
    EXPECT_TRUE(fs_.create_dirs(out).ok());
    return quantize_model(fs_, in, out, options, ref, reporter_);
  }

  MemoryFileSystem fs_;
  RecordingReporter reporter_;
  ModelSpec spec_;
};

std::string_view bytes_of(const std::vector<std::byte>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

TEST_F(QuantizeModelTest, MatchesTheMlxQuantizerBitForBit) {
  QuantizeOptions options;
  options.bits = 4;
  options.group_size = 32;
  auto r = quantize("/float", "/q4", options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->dtype, DType::kBF16);  // torch_dtype
  auto in = ModelDir::open(fs_, "/float");
  auto out = ModelDir::open(fs_, "/q4");
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(out->config()["quantization"],
            nlohmann::ordered_json::parse(R"({"group_size":32,"bits":4,"mode":"affine"})"));
  int quantized = 0;
  for (const FloatTensor& t : spec_.tensors) {
    const TensorRef src = in->weights().find(t.name);
    const bool want_quantized = is_quantization_candidate(t.name, t.shape, t.dtype) && t.shape[1] % 32 == 0;
    if (!want_quantized) {
      // Norms, biases and the odd Linear stay float, byte for byte.
      EXPECT_EQ(as_chars(out->weights().find(t.name).bytes), as_chars(src.bytes)) << t.name;
      if (t.name.ends_with(".weight")) {
        EXPECT_FALSE(out->weights().contains(t.name.substr(0, t.name.size() - 7) + ".scales")) << t.name;
      }
      continue;
    }
    ++quantized;
    auto want = quantize_tensor(t.name, DType::kBF16, t.shape, src.bytes, {4, 32, QuantKernel::kGpu});
    ASSERT_TRUE(want.ok());
    const std::string m = t.name.substr(0, t.name.size() - 7);
    EXPECT_EQ(as_chars(out->weights().find(t.name).bytes), bytes_of(want->weight)) << t.name;
    EXPECT_EQ(as_chars(out->weights().find(m + ".scales").bytes), bytes_of(want->scales)) << t.name;
    EXPECT_EQ(as_chars(out->weights().find(m + ".biases").bytes), bytes_of(want->biases)) << t.name;
  }
  EXPECT_EQ(quantized, 15);  // 7 Linears × 2 layers + the embedding
  EXPECT_EQ(r->quantized, quantized);
  // The odd Linear was named in a warning.
  bool warned = false;
  for (const Event& e : reporter_.events())
    warned |= e.level == Level::kWarn && e.message.find("model.layers.0.mlp.odd_proj.weight") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_FALSE(r->retention.has_value());
}

TEST_F(QuantizeModelTest, CastsToTheScalesDtypeBeforeQuantizingLikeMlx) {
  ModelSpec f32 = tiny_qwen(DType::kF32, 3);
  write_model(fs_, "/f32", f32);
  QuantizeOptions options;
  options.bits = 8;
  options.dtype = DType::kBF16;
  options.kernel = QuantKernel::kCpu;
  auto r = quantize("/f32", "/q8", options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto out = ModelDir::open(fs_, "/q8");
  EXPECT_EQ(out->config()["torch_dtype"], "bfloat16");
  const FloatTensor& t = f32.tensors[0];  // the embedding
  ASSERT_EQ(t.name, "model.embed_tokens.weight");
  const std::string bf16 = to_bytes(DType::kBF16, t.values);
  auto want = quantize_tensor(t.name, DType::kBF16, t.shape, as_bytes(bf16), {8, 64, QuantKernel::kCpu});
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(as_chars(out->weights().find(t.name).bytes), bytes_of(want->weight));
  // Float tensors are converted to the dtype as well.
  EXPECT_EQ(out->weights().find("model.norm.weight").info->dtype, DType::kBF16);
}

TEST_F(QuantizeModelTest, PerModuleOverrides) {
  QuantizeOptions options;
  options.overrides["model.layers.0.mlp.down_proj"] = LayerQuant{8, 64, "affine"};
  options.overrides["model.embed_tokens"] = std::nullopt;
  auto r = quantize("/float", "/mixed", options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  auto out = ModelDir::open(fs_, "/mixed");
  ASSERT_TRUE(out.ok()) << out.error().to_string();
  EXPECT_EQ(out->module_quant("model.layers.0.mlp.down_proj"), (LayerQuant{8, 64, "affine"}));
  EXPECT_EQ(out->module_quant("model.layers.1.mlp.down_proj"), (LayerQuant{4, 64, "affine"}));
  EXPECT_EQ(out->module_quant("model.embed_tokens"), std::nullopt);
  EXPECT_EQ(out->weights().find("model.embed_tokens.weight").info->dtype, DType::kBF16);
  EXPECT_EQ(out->weights().find("model.layers.0.mlp.down_proj.weight").info->shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(out->weights().find("model.layers.1.mlp.down_proj.weight").info->shape, (std::vector<int64_t>{64, 16}));
}

TEST_F(QuantizeModelTest, BadParametersAreErrorsNamingTheTensor) {
  QuantizeOptions bad_gs;
  bad_gs.group_size = 48;
  auto r = quantize("/float", "/o1", bad_gs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);

  QuantizeOptions bad_bits;
  bad_bits.bits = 7;
  EXPECT_EQ(quantize("/float", "/o2", bad_bits).error().code, Errc::kInvalidInput);

  // An override whose group size does not divide the input dimension (64).
  QuantizeOptions not_dividing;
  not_dividing.overrides["model.layers.0.self_attn.q_proj"] = LayerQuant{4, 128, "affine"};
  r = quantize("/float", "/o3", not_dividing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_NE(r.error().message.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("group size 128"), std::string::npos) << r.error().message;

  QuantizeOptions unknown;
  unknown.overrides["model.layers.9.mlp.down_proj"] = LayerQuant{8, 64, "affine"};
  r = quantize("/float", "/o4", unknown);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("model.layers.9.mlp.down_proj"), std::string::npos);

  QuantizeOptions f64;
  f64.dtype = DType::kF64;
  EXPECT_EQ(quantize("/float", "/o5", f64).error().code, Errc::kInvalidInput);

  // A hostile header in the input: the reader's error names the file.
  write_model(fs_, "/hostile", spec_);
  std::string file = *fs_.contents("/hostile/model.safetensors");
  file[0] = '\xff';  // header length far beyond the file
  fs_.add_file("/hostile/model.safetensors", file);
  r = quantize("/hostile", "/o6", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_NE(r.error().to_string().find("/hostile/model.safetensors"), std::string::npos) << r.error().to_string();
  for (const char* d : {"/o1", "/o2", "/o3", "/o4", "/o5", "/o6"}) EXPECT_TRUE(fs_.list_dir(d)->empty()) << d;
}

TEST_F(QuantizeModelTest, DequantizeModelIsExactAndRequantizeWorks) {
  QuantizeOptions options;
  options.group_size = 32;
  ASSERT_TRUE(quantize("/float", "/q4", options).ok());
  for (DType d : {DType::kF32, DType::kBF16}) {
    DequantizeOptions dq;
    dq.dtype = d;
    const fs::path out = fs::path("/dq") / dtype_name(d);
    ASSERT_TRUE(fs_.create_dirs(out).ok());
    auto r = dequantize_model(fs_, "/q4", out, dq, reporter_);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    auto model = ModelDir::open(fs_, out);
    EXPECT_FALSE(model->config().contains("quantization"));
    EXPECT_EQ(model->config()["torch_dtype"], *torch_dtype_name(d));
    // Exact q·s+b in f32 (read independently from the codes), rounded once.
    const std::string name = "model.layers.1.mlp.up_proj.weight";
    const ReadBack q = read_tensor(fs_, "/q4", name);
    auto q4 = ModelDir::open(fs_, "/q4");
    const TensorRef w = q4->weights().find(name), s = q4->weights().find("model.layers.1.mlp.up_proj.scales"),
                    b = q4->weights().find("model.layers.1.mlp.up_proj.biases");
    std::vector<uint8_t> codes(q.values.size());
    unpack_codes(w.bytes, 4, codes);
    std::vector<float> sv(codes.size() / 32), bv(sv.size());
    ASSERT_TRUE(to_f32(DType::kBF16, s.bytes, sv).ok());
    ASSERT_TRUE(to_f32(DType::kBF16, b.bytes, bv).ok());
    const ReadBack got = read_tensor(fs_, out, name);
    EXPECT_FALSE(got.quantized);
    for (size_t i = 0; i < codes.size(); ++i) {
      const float exact = static_cast<float>(codes[i]) * sv[i / 32] + bv[i / 32];
      ASSERT_EQ(got.values[i], round_to_dtype(exact, d)) << i;
    }
  }
  // 4-bit → 8-bit re-quantization: every 8-bit value is within half an
  // 8-bit step (|scale|/2, plus bf16 rounding of the input) of the 4-bit one.
  QuantizeOptions eight;
  eight.bits = 8;
  eight.group_size = 32;
  auto r = quantize("/q4", "/q8", eight);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  const ReadBack a = read_tensor(fs_, "/q4", "model.layers.0.self_attn.o_proj.weight");
  const ReadBack b = read_tensor(fs_, "/q8", "model.layers.0.self_attn.o_proj.weight");
  ASSERT_EQ(a.values.size(), b.values.size());
  double max_err = 0;
  for (size_t i = 0; i < a.values.size(); ++i)
    max_err = std::max(max_err, std::abs(static_cast<double>(a.values[i]) - b.values[i]));
  EXPECT_LT(max_err, 0.16 / 255 * 0.5 + 0.08 * unit_roundoff(DType::kBF16) * 2);
}

TEST_F(QuantizeModelTest, DeterministicForAnyThreadCount) {
  ModelSpec big = tiny_qwen(DType::kBF16, 4, 256, 2048);
  write_model(fs_, "/big", big);
  std::map<std::string, std::string> first;
  for (int threads : {1, 3, 2}) {
    QuantizeOptions options;
    options.threads = threads;
    const fs::path out = fmt::format("/bq/{}", threads);
    ASSERT_TRUE(quantize("/big", out, options).ok());
    if (first.empty())
      first = dir_contents(fs_, out);
    else
      EXPECT_TRUE(dir_contents(fs_, out) == first) << threads;
  }
}

// The seeds' story in numbers: one adapter whose delta is about one 4-bit
// step. In-place 4-bit fusion erases most of it; fusing in float and then
// quantizing to 8 bits keeps most of it. Expected figures: quantization
// error ≈ step/√12 per weight, so retention ≈ 1 − (step/√12)/rms(ΔW): about
// 0 for the 4-bit step and about 0.9 for the 8-bit one (16× finer).
TEST_F(QuantizeModelTest, RetentionHighAt8BitsAndLowIn4BitInPlace) {
  ModelSpec base = tiny_qwen(DType::kBF16, 8);
  base.quant = QuantParams{4, 64, QuantKernel::kGpu};
  write_model(fs_, "/base4", base);
  // 4-bit step here ≈ 0.16/15 ≈ 0.011; rms(ΔW) ≈ 0.003, a quarter step.
  std::vector<LoraModule> mods = {make_module("model.layers.0.mlp.down_proj", 64, 128, 8, 1.0f, 3, 0.2f, 0.2f),
                                  make_module("model.layers.1.self_attn.q_proj", 64, 64, 8, 1.0f, 4, 0.2f, 0.2f)};
  for (LoraModule& m : mods) m.scale = 0.08f;
  write_mlx_adapter(fs_, "/lora", mods);
  auto adapters = load_adapters(fs_, {"/lora"});
  ASSERT_TRUE(adapters.ok());

  FuseOptions inplace;
  inplace.mode = FuseMode::kInplace;
  ASSERT_TRUE(fs_.create_dirs("/inplace").ok());
  auto in4 = fuse_model(fs_, "/base4", *adapters, "/inplace", inplace, reporter_);
  ASSERT_TRUE(in4.ok()) << in4.error().to_string();

  FuseOptions deq;
  deq.dtype = DType::kF32;
  ASSERT_TRUE(fs_.create_dirs("/fused").ok());
  auto fused = fuse_model(fs_, "/base4", *adapters, "/fused", deq, reporter_);
  ASSERT_TRUE(fused.ok()) << fused.error().to_string();
  EXPECT_EQ(*fused->retention.retained(), 1.0);

  RetentionReference ref{"/base4", *adapters};
  QuantizeOptions q8;
  q8.bits = 8;
  q8.dtype = DType::kBF16;
  auto r8 = quantize("/fused", "/fused8", q8, &ref);
  ASSERT_TRUE(r8.ok()) << r8.error().to_string();
  ASSERT_TRUE(r8->retention.has_value());
  const double kept8 = *r8->retention->retained();
  const double kept4 = *in4->retention.retained();
  EXPECT_GT(kept8, 0.85);
  EXPECT_LT(kept4, 0.3);
  EXPECT_GT(*r8->retention->cosine(), 0.99);
  EXPECT_EQ(r8->retention->tensors.size(), 2u);
  const std::string v8 = r8->retention->verdict();
  EXPECT_EQ(v8.rfind("8-bit quantization kept", 0), 0u) << v8;
  EXPECT_NE(in4->retention.verdict().find("Fuse with mode: dequantize"), std::string::npos) << in4->retention.verdict();
  // The standalone retention step measures the same figures.
  auto again = measure_retention(fs_, "/fused8", "/base4", *adapters, "8-bit quantization", 8, 0, reporter_);
  ASSERT_TRUE(again.ok()) << again.error().to_string();
  EXPECT_EQ(*again->retained(), kept8);
}

}  // namespace
}  // namespace mb
