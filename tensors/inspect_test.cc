#include "tensors/inspect.h"

#include <gtest/gtest.h>

#include "base/fs_test_support.h"
#include "base/reporter.h"
#include "tensors/fuse.h"
#include "tensors/fuse_test_support.h"
#include "tensors/quantize_model.h"

namespace mb {
namespace {

using namespace fuse_test;  // NOLINT: test helpers

TEST(Inspect, QuantizedModelSizeIsParamsTimesBitsOverEight) {
  MemoryFileSystem fs;
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{4, 64, QuantKernel::kGpu};
  write_model(fs, "/m", spec);
  auto in = inspect(fs, "/m");
  ASSERT_TRUE(in.ok()) << in.error().to_string();
  EXPECT_EQ(in->kind, InspectKind::kModel);

  // Parameters: every float element of the spec, quantized ones unpacked.
  uint64_t params = 0, quantized_params = 0, float_bytes = 0;
  for (const FloatTensor& t : spec.tensors) {
    params += static_cast<uint64_t>(numel(t.shape));
    if (is_quantized_in(spec, t))
      quantized_params += static_cast<uint64_t>(numel(t.shape));
    else
      float_bytes += static_cast<uint64_t>(numel(t.shape)) * 2;
  }
  EXPECT_EQ(in->parameters, params);
  ASSERT_EQ(in->groups.size(), 2u);
  const SizeGroup& q = in->groups[0];
  EXPECT_EQ(q.label, "4-bit gs64 (BF16 scales)");
  EXPECT_EQ(q.tensors, 15);
  EXPECT_EQ(q.parameters, quantized_params);
  EXPECT_DOUBLE_EQ(q.nominal_bits, 4.5);  // 4 + 2·16/64
  // Exact: packed codes plus one bf16 scale and bias per 64 weights.
  EXPECT_EQ(q.bytes, quantized_params * 9 / 16);
  EXPECT_EQ(in->groups[1].label, "BF16");
  EXPECT_EQ(in->groups[1].bytes, float_bytes);
  EXPECT_EQ(in->tensor_bytes, q.bytes + float_bytes);
  EXPECT_GT(in->safetensors_bytes, in->tensor_bytes);  // + header
  EXPECT_GT(in->disk_bytes, in->safetensors_bytes);    // + config, tokenizer
  EXPECT_NEAR(in->bits_per_weight(), static_cast<double>(in->tensor_bytes) * 8 / static_cast<double>(params), 1e-12);

  bool found = false;
  for (const TensorSummary& t : in->tensors)
    if (t.name == "model.layers.0.mlp.down_proj.weight") {
      found = true;
      EXPECT_EQ(t.dtype, DType::kU32);
      EXPECT_EQ(t.shape, (std::vector<int64_t>{64, 16}));
      EXPECT_EQ(t.logical_shape, (std::vector<int64_t>{64, 128}));
      EXPECT_EQ(t.quant, (LayerQuant{4, 64, "affine"}));
      EXPECT_EQ(t.parameters, 64u * 128u);
    } else if (t.name == "model.layers.0.mlp.down_proj.scales") {
      EXPECT_TRUE(t.quant_overhead);
      EXPECT_EQ(t.parameters, 0u);
    }
  EXPECT_TRUE(found);
  const std::string text = render_inspection(*in, true);
  EXPECT_NE(text.find("4-bit gs64 (BF16 scales)"), std::string::npos) << text;
  EXPECT_NE(text.find("×  4.50 / 8"), std::string::npos) << text;
  EXPECT_NE(text.find("4-bit gs64 → [64, 128]"), std::string::npos) << text;
  const nlohmann::json j = in->to_json();
  EXPECT_EQ(j["parameters"], params);
  EXPECT_EQ(j["groups"][0]["nominal_bits"], 4.5);
}

TEST(Inspect, Adapter) {
  MemoryFileSystem fs;
  write_peft_adapter(fs, "/a",
                     {make_module("model.layers.0.self_attn.q_proj", 64, 64, 8, 2.0f, 1),
                      make_module("model.layers.0.mlp.down_proj", 64, 128, 8, 2.0f, 2)});
  auto in = inspect(fs, "/a");
  ASSERT_TRUE(in.ok()) << in.error().to_string();
  EXPECT_EQ(in->kind, InspectKind::kAdapter);
  ASSERT_TRUE(in->adapter.has_value());
  EXPECT_EQ(in->adapter->format, "PEFT");
  EXPECT_EQ(in->adapter->modules, 2);
  EXPECT_EQ(in->adapter->ranks, std::vector<int64_t>{8});
  EXPECT_EQ(in->adapter->scales, std::vector<float>{2.0f});
  EXPECT_EQ(in->parameters, 8u * 64 + 64u * 8 + 8u * 128 + 64u * 8);
  EXPECT_EQ(in->tensor_bytes, in->parameters * 4);
  EXPECT_NE(render_inspection(*in, false).find("PEFT LoRA: 2 modules, rank 8, scale 2"), std::string::npos)
      << render_inspection(*in, false);
  EXPECT_EQ(inspect(fs, "/nothing").error().code, Errc::kNotFound);
}

TEST(Diff, ReportsWhatDiffersOnDequantizedValues) {
  MemoryFileSystem fs;
  RecordingReporter reporter;
  ModelSpec spec = tiny_qwen(DType::kBF16);
  write_model(fs, "/a", spec);
  // Same model: identical.
  write_model(fs, "/same", spec);
  auto same = diff_models(fs, "/a", "/same");
  ASSERT_TRUE(same.ok()) << same.error().to_string();
  EXPECT_TRUE(same->same());
  EXPECT_EQ(same->identical, static_cast<int64_t>(spec.tensors.size()));

  // One value changed, one tensor dropped, one added, one reshaped.
  ModelSpec other = spec;
  for (FloatTensor& t : other.tensors) {
    if (t.name == "model.layers.1.mlp.up_proj.weight") t.values[5] += 0.5f;
    if (t.name == "model.layers.0.self_attn.k_proj.bias") t.shape = {2, 16};
  }
  other.tensors.erase(other.tensors.begin() + 1);  // model.norm.weight
  other.tensors.push_back({"lm_head.weight", DType::kBF16, {96, 64}, make_values(96 * 64, 3, 0.1f)});
  write_model(fs, "/b", other);
  auto d = diff_models(fs, "/a", "/b", 3);
  ASSERT_TRUE(d.ok()) << d.error().to_string();
  EXPECT_FALSE(d->same());
  EXPECT_EQ(d->different, 1);
  EXPECT_EQ(d->only_a, 1);
  EXPECT_EQ(d->only_b, 1);
  EXPECT_EQ(d->shape_mismatch, 1);
  for (const TensorDiff& t : d->tensors)
    if (t.name == "model.layers.1.mlp.up_proj.weight") {
      EXPECT_EQ(t.kind, DiffKind::kDifferent);
      EXPECT_EQ(t.differing, 1);
      const ReadBack a = read_tensor(fs, "/a", t.name), b = read_tensor(fs, "/b", t.name);
      EXPECT_DOUBLE_EQ(t.max_abs, std::abs(static_cast<double>(b.values[5]) - a.values[5]));
      double a_sq = 0;
      for (float v : a.values) a_sq += static_cast<double>(v) * v;
      EXPECT_DOUBLE_EQ(t.rel, t.max_abs / std::sqrt(a_sq));
    }
  const std::string text = render_diff(*d, false);
  EXPECT_NE(text.find("- model.norm.weight  only in a"), std::string::npos) << text;
  EXPECT_NE(text.find("+ lm_head.weight  only in b"), std::string::npos) << text;
  EXPECT_NE(text.find("! model.layers.0.self_attn.k_proj.bias  shape [32] vs [2, 16]"), std::string::npos) << text;
  EXPECT_NE(text.find("~ model.layers.1.mlp.up_proj.weight  BF16  1 of 8192 values differ"), std::string::npos) << text;
  EXPECT_EQ(d->to_json()["only_in_a"], 1);

  // A float model against its 8-bit quantization: every quantized weight
  // differs by at most half a quantization step, nothing else.
  QuantizeOptions q8;
  q8.bits = 8;
  ASSERT_TRUE(fs.create_dirs("/q8").ok());
  ASSERT_TRUE(quantize_model(fs, "/a", "/q8", q8, nullptr, reporter).ok());
  auto dq = diff_models(fs, "/a", "/q8");
  ASSERT_TRUE(dq.ok()) << dq.error().to_string();
  EXPECT_EQ(dq->only_a + dq->only_b + dq->shape_mismatch, 0);
  for (const TensorDiff& t : dq->tensors) {
    if (t.kind != DiffKind::kDifferent) continue;
    EXPECT_NE(t.name.find(".weight"), std::string::npos) << t.name;
    EXPECT_EQ(t.stored_a, "BF16") << t.name;
    EXPECT_EQ(t.stored_b, "8-bit gs64") << t.name;
    // Step = range/255 with range ≤ 0.16. Error ≤ half a step (rounding) +
    // half a step (the edge trick's q0 rounding shifts the grid; the far end
    // is clamped) + 255·2⁻⁹ steps (bf16 scale) + 2⁻⁹·0.08 (bf16 bias)
    // < 2 steps.
    EXPECT_LT(t.max_abs, 2 * 0.16 / 255) << t.name;
    EXPECT_LT(t.rel, 0.01) << t.name;
  }
}

}  // namespace
}  // namespace mb
