// modelbuild's quantizer and model directories against real MLX.
//
// tests/mlx/check_model.mjs runs MLX's own C++ library (through the
// @frost-beta/mlx Node bindings, CPU backend; scripts/install-deps.sh --test
// installs it) on what modelbuild writes:
//   - mx.quantize / mx.dequantize against our kernels, bit for bit;
//   - models modelbuild writes (quantized, fused, sharded, with per-layer
//     overrides, and the bundled example's targets) loaded the way
//     mlx_lm.utils.load_model loads them: mx.load of every model*.safetensors,
//     Qwen2 sanitize, nn.quantize where the checkpoint has scales, strict
//     load_weights; then MLX's forward pass against our engine's logits.
//
// That MLX is from mid-2024 (bindings 0.0.7), which limits what it can check:
// its quantizer knows 2, 4 and 8 bits only and wants rows of at least 512,
// 256 and 128 values (so the test models are 256 wide), and its quantizer
// is the CPU one. Newer MLX lifted those limits without changing the layout.
// Missing node or MLX is a test failure, not a skip.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/reporter.h"
#include "inference/forward.h"
#include "inference/model.h"
#include "inference/thread_pool.h"
#include "tensors/fuse.h"
#include "tensors/fuse_test_support.h"
#include "tensors/quantize_model.h"
#include "tensors/safetensors.h"
#include "tests/e2e_support.h"

namespace mb {
namespace {

using nlohmann::json;
using namespace mb::fuse_test;

fs::path mlx_dir() { return e2e::source_dir() / "tests" / "mlx"; }

struct NodeRun {
  int code = -1;
  std::string output;  // stdout + stderr
  std::string out;     // stdout
};

// node tests/mlx/check_model.mjs ARGS...
NodeRun check_model(std::vector<std::string> args) {
  args.insert(args.begin(), {test::node_executable(), (mlx_dir() / "check_model.mjs").string()});
  SubprocessOptions opts;
  opts.timeout = std::chrono::seconds(120);
  auto r = run_subprocess(args, opts);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  if (!r.ok()) return {};
  EXPECT_FALSE(r->timed_out) << r->output;
  return {r->exit_code, r->output, r->stdout_text};
}

class MlxCompat : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(!test::node_executable().empty() && fs::exists(test::node_executable()))
        << "node was not found when this build was configured; run scripts/install-deps.sh --test";
    ASSERT_TRUE(fs::exists(mlx_dir() / "node_modules" / "@frost-beta" / "mlx" / "build" / "Release" / "mlx.node"))
        << "MLX's Node bindings are not installed in " << mlx_dir() << "; run scripts/install-deps.sh --test";
    fs_ = make_real_file_system();
  }

  fs::path path(const std::string& name) const { return tmp_.path() / name; }

  void write_f32(const fs::path& file, const std::vector<std::pair<std::string, std::vector<float>>>& tensors,
                 int64_t cols) {
    std::vector<std::string> bytes;
    for (const auto& [name, v] : tensors) bytes.push_back(to_bytes(DType::kF32, v));
    std::vector<TensorData> data;
    for (size_t i = 0; i < tensors.size(); ++i)
      data.push_back({{tensors[i].first, DType::kF32, {static_cast<int64_t>(tensors[i].second.size()) / cols, cols}},
                      as_bytes(bytes[i])});
    ASSERT_TRUE(write_safetensors(*fs_, file, data, {}).ok());
  }

  static std::string bytes_of(const SafetensorsFile& f, const std::string& name) {
    TensorRef t = f.get(name);
    EXPECT_TRUE(t) << "MLX wrote no tensor " << name << " in " << f.where();
    if (!t) return {};
    return std::string(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  }

  std::unique_ptr<FileSystem> fs_;
  TempDir tmp_{"mlx_compat"};
};

// Rows for the quantizer: random values at several scales, and rows made of
// docs/formats/mlx-quantization.md §5.2's worked groups (each a 32-value group, repeated along
// the row so that every group size sees it whole or joined to copies).
std::vector<std::pair<std::string, std::vector<float>>> quantizer_inputs(int64_t cols) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  out.push_back({"random", make_values(static_cast<size_t>(16 * cols), 7, 0.08f)});
  out.push_back({"wide_range", make_values(static_cast<size_t>(4 * cols), 8, 300.0f)});
  out.push_back({"tiny", make_values(static_cast<size_t>(4 * cols), 9, 1e-6f)});
  std::vector<std::vector<float>> groups(6);
  for (int i = 0; i < 32; ++i) {
    groups[0].push_back(static_cast<float>(i % 16 - 5) * 0.125f);                // example 1
    groups[1].push_back(static_cast<float>(i - 20) / 16.0f);                     // example 2: ties
    groups[2].push_back(-1.0f + static_cast<float>(i) / 256.0f);                 // example 3
    groups[3].push_back(0.3f);                                                   // example 4
    groups[4].push_back(0.0f);                                                   // example 4: zeros
    groups[5].push_back(std::min(-1.0f + static_cast<float>(i) / 16.0f, 0.5f));  // example 5
  }
  std::vector<float> vectors;
  for (const auto& g : groups)
    for (int64_t c = 0; c < cols; c += 32) vectors.insert(vectors.end(), g.begin(), g.end());
  out.push_back({"vectors", vectors});
  return out;
}

// mx.quantize (float32 in) is MLX's CPU quantizer: our kCpu must give the
// same codes, scales and biases bit for bit.
TEST_F(MlxCompat, QuantizeIsBitExactWithMlx) {
  const int64_t cols = 512;  // the widest minimum of this MLX (2 bits)
  const auto inputs = quantizer_inputs(cols);
  write_f32(path("in.safetensors"), inputs, cols);
  for (int bits : {2, 4, 8}) {
    for (int gs : {32, 64, 128}) {
      SCOPED_TRACE(fmt::format("bits {} group size {}", bits, gs));
      const std::string out = path(fmt::format("mlx_q{}_g{}.safetensors", bits, gs)).string();
      NodeRun r =
          check_model({"quantize", path("in.safetensors").string(), out, std::to_string(gs), std::to_string(bits)});
      ASSERT_EQ(r.code, 0) << r.output;
      auto mlx = SafetensorsFile::open(*fs_, out);
      ASSERT_TRUE(mlx.ok()) << mlx.error().to_string();
      for (const auto& [name, w] : inputs) {
        SCOPED_TRACE(name);
        std::string packed(w.size() * static_cast<size_t>(bits) / 8, '\0');
        std::string scales(w.size() / static_cast<size_t>(gs) * 4, '\0'), biases(scales.size(), '\0');
        auto span = [](std::string& s) { return std::span(reinterpret_cast<std::byte*>(s.data()), s.size()); };
        ASSERT_TRUE(quantize_rows(name, w, cols, DType::kF32, {bits, gs, QuantKernel::kCpu}, span(packed), span(scales),
                                  span(biases))
                        .ok());
        EXPECT_EQ(mlx->find(name + ".scales")->dtype, DType::kF32);
        EXPECT_TRUE(bytes_of(*mlx, name + ".weight") == packed) << "packed codes differ";
        EXPECT_TRUE(bytes_of(*mlx, name + ".scales") == scales) << "scales differ";
        EXPECT_TRUE(bytes_of(*mlx, name + ".biases") == biases) << "biases differ";
        if (name == "vectors" && bits == 4) {
          // The comparison can fail: the GPU rounding (ties away from zero)
          // is not what MLX's CPU quantizer does on example 2's ties.
          std::string gpu(packed.size(), '\0');
          ASSERT_TRUE(quantize_rows(name, w, cols, DType::kF32, {bits, gs, QuantKernel::kGpu}, span(gpu), span(scales),
                                    span(biases))
                          .ok());
          EXPECT_NE(gpu, packed);
        }
      }
    }
  }
}

// mx.dequantize of what we quantize (the default GPU rounding, scales in
// each float dtype) equals our dequantization bit for bit.
TEST_F(MlxCompat, DequantizeIsBitExactWithMlx) {
  const int64_t cols = 256;
  const std::vector<float> w = make_values(static_cast<size_t>(8 * cols), 11, 0.5f);
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    const std::vector<float> in = [&] {
      std::vector<float> v(w.size());
      round_to_dtype(w, v, dtype);
      return v;
    }();
    for (int bits : {2, 4, 8}) {
      const int gs = bits == 2 ? 32 : bits == 4 ? 64 : 128;
      SCOPED_TRACE(fmt::format("{} bits {} group size {}", dtype_name(dtype), bits, gs));
      const std::string raw = to_bytes(dtype, in);
      auto q = quantize_tensor("w", dtype, std::vector<int64_t>{8, cols}, as_bytes(raw), {bits, gs, QuantKernel::kGpu});
      ASSERT_TRUE(q.ok()) << q.error().to_string();
      const fs::path qfile = path("q.safetensors"), dqfile = path("dq.safetensors");
      ASSERT_TRUE(write_safetensors(*fs_, qfile,
                                    {{{"w.weight", DType::kU32, q->weight_shape}, q->weight},
                                     {{"w.scales", q->dtype, q->scales_shape}, q->scales},
                                     {{"w.biases", q->dtype, q->scales_shape}, q->biases}},
                                    {})
                      .ok());
      NodeRun r =
          check_model({"dequantize", qfile.string(), dqfile.string(), std::to_string(gs), std::to_string(bits)});
      ASSERT_EQ(r.code, 0) << r.output;
      auto ours = dequantize_tensor("w", q->weight_shape, q->weight, q->scales_shape, q->dtype, q->scales, q->biases,
                                    bits, gs, nullptr);
      ASSERT_TRUE(ours.ok());
      auto mlx = SafetensorsFile::open(*fs_, dqfile);
      ASSERT_TRUE(mlx.ok()) << mlx.error().to_string();
      ASSERT_EQ(mlx->find("w")->dtype, dtype);
      EXPECT_TRUE(bytes_of(*mlx, "w") == to_bytes(dtype, *ours));
    }
  }
}

// ---- models -----------------------------------------------------------------

constexpr int64_t kHidden = 256, kInter = 512, kVocab = 96;
const std::vector<int32_t> kTokens = {3, 17, 42, 5, 88, 61, 0, 29, 74, 12, 95, 50};

// A float16 Qwen2 model as wide as this MLX's 4-bit quantizer needs, with the
// config mlx_lm and our engine both read.
ModelSpec wide_qwen() {
  ModelSpec spec = tiny_qwen(DType::kF16, 21, kHidden, kInter);
  spec.config = {{"architectures", {"Qwen2ForCausalLM"}},
                 {"model_type", "qwen2"},
                 {"hidden_size", kHidden},
                 {"intermediate_size", kInter},
                 {"num_attention_heads", 4},
                 {"num_key_value_heads", 2},
                 {"num_hidden_layers", 2},
                 {"vocab_size", kVocab},
                 {"rms_norm_eps", 1e-6},
                 {"rope_theta", 1000000.0},
                 {"max_position_embeddings", 512},
                 {"tie_word_embeddings", true},
                 {"torch_dtype", "float16"}};
  return spec;
}

// Our engine's float32 logits for kTokens, every position.
std::vector<float> engine_logits(const fs::path& dir) {
  auto fs = make_real_file_system();
  auto model = inference::load_model(*fs, dir);
  EXPECT_TRUE(model.ok()) << model.error().to_string();
  if (!model.ok()) return {};
  inference::ThreadPool pool(2);
  inference::Forward fw(*model, pool);
  std::vector<float> logits;
  EXPECT_TRUE(fw.run(kTokens, true, logits).ok());
  return logits;
}

std::vector<float> read_f32(const fs::path& file) {
  const std::string bytes = e2e::read_file(file);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// Both forward passes run in float32 on the same stored weights, so they
// differ only by summation order (MLX's BLAS against our 16-lane sums)
// through two layers: observed gaps are 0.8e-6 .. 1.9e-6 of the largest
// logit (MB_MLX_VERBOSE=1 prints them). 1e-4 leaves a 50x margin and still
// catches any weight read differently: the adapter's delta alone moves the
// logits by 0.29 of the largest (checked below).
constexpr double kLogitRelTol = 1e-4;

class MlxModels : public MlxCompat {
 protected:
  // Loads `dir` with the mlx_lm loader; returns its JSON summary.
  json mlx_load(const fs::path& dir) {
    NodeRun r = check_model({"load", dir.string()});
    EXPECT_EQ(r.code, 0) << r.output;
    if (r.code != 0) return json::object();
    return json::parse(r.out);
  }

  std::vector<float> mlx_logits(const fs::path& dir) {
    std::string ids;
    for (int32_t t : kTokens) ids += (ids.empty() ? "" : ",") + std::to_string(t);
    const fs::path out = path("logits.f32");
    NodeRun r = check_model({"logits", dir.string(), ids, out.string()});
    EXPECT_EQ(r.code, 0) << r.output;
    return r.code == 0 ? read_f32(out) : std::vector<float>{};
  }

  // MLX and our engine compute the same logits from `dir`.
  void expect_same_logits(const fs::path& dir, int64_t vocab = kVocab) {
    const std::vector<float> ours = engine_logits(dir), theirs = mlx_logits(dir);
    ASSERT_EQ(theirs.size(), kTokens.size() * static_cast<size_t>(vocab));
    const double diff = max_diff(ours, theirs), scale = max_abs(ours);
    if (std::getenv("MB_MLX_VERBOSE"))
      fmt::print("{}: max |logit diff| / max |logit| = {:.3g}\n", dir.string(), diff / scale);
    EXPECT_LE(diff, kLogitRelTol * scale) << dir << ": max |logit diff| " << diff << ", max |logit| " << scale;
  }

  // The f16 base, its 4-bit quantization, and an MLX adapter on q, v and
  // down_proj of both layers.
  void make_base_and_adapter() {
    write_model(*fs_, path("base_f16"), wide_qwen());
    QuantizeOptions q4;
    q4.bits = 4;
    q4.group_size = 64;
    ASSERT_TRUE(quantize_model(*fs_, path("base_f16"), make_dir("base_4bit"), q4, nullptr, reporter_).ok());
    std::vector<LoraModule> modules;
    uint32_t seed = 500;
    for (int l = 0; l < 2; ++l) {
      const std::string p = fmt::format("model.layers.{}.", l);
      modules.push_back(make_module(p + "self_attn.q_proj", kHidden, kHidden, 8, 2.0f, seed += 2));
      modules.push_back(make_module(p + "self_attn.v_proj", kHidden / 2, kHidden, 8, 2.0f, seed += 2));
      modules.push_back(make_module(p + "mlp.down_proj", kHidden, kInter, 8, 2.0f, seed += 2));
    }
    write_mlx_adapter(*fs_, path("adapter"), modules);
    auto a = load_adapters(*fs_, {path("adapter")});
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    adapters_ = *a;
  }

  fs::path make_dir(const std::string& name) {
    EXPECT_TRUE(fs_->create_dirs(path(name)).ok());
    return path(name);
  }

  fs::path fuse(const std::string& name, FuseOptions options) {
    auto r = fuse_model(*fs_, path("base_4bit"), adapters_, make_dir(name), options, reporter_);
    EXPECT_TRUE(r.ok()) << r.error().to_string();
    return path(name);
  }

  NullReporter reporter_;
  std::vector<Adapter> adapters_;
};

int count_quantized(const json& summary, int bits, int group_size) {
  int n = 0;
  for (const auto& [layer, q] : summary["quantized"].items())
    if (q["bits"] == bits && q["group_size"] == group_size) ++n;
  return n;
}

// 2 layers × 7 linear layers, plus the embedding.
constexpr int kQuantizable = 2 * 7 + 1;

TEST_F(MlxModels, QuantizedModelsLoadAndComputeAsOurs) {
  make_base_and_adapter();
  json base = mlx_load(path("base_4bit"));
  EXPECT_EQ(count_quantized(base, 4, 64), kQuantizable) << base.dump();
  expect_same_logits(path("base_4bit"));

  // 8 bits at group size 128 with per-layer overrides (one layer at 4 bits,
  // one kept float), bf16 scales and floats, written as several shards with
  // an index.
  QuantizeOptions q8;
  q8.bits = 8;
  q8.group_size = 128;
  q8.dtype = DType::kBF16;
  q8.overrides["model.layers.0.mlp.down_proj"] = LayerQuant{4, 64, "affine"};
  q8.overrides["model.layers.1.mlp.up_proj"] = std::nullopt;
  q8.max_shard_bytes = 200'000;
  ASSERT_TRUE(quantize_model(*fs_, path("base_f16"), make_dir("q8"), q8, nullptr, reporter_).ok());
  json s = mlx_load(path("q8"));
  EXPECT_GE(s["files"].size(), 3u) << s.dump();
  EXPECT_TRUE(fs::exists(path("q8") / "model.safetensors.index.json"));
  EXPECT_EQ(count_quantized(s, 8, 128), kQuantizable - 2) << s.dump();
  EXPECT_EQ(s["quantized"]["model.layers.0.mlp.down_proj"], (json{{"bits", 4}, {"group_size", 64}}));
  EXPECT_FALSE(s["quantized"].contains("model.layers.1.mlp.up_proj"));
  expect_same_logits(path("q8"));
}

TEST_F(MlxModels, FusedModelsLoadAndComputeAsOurs) {
  make_base_and_adapter();
  FuseOptions f16;
  f16.dtype = DType::kF16;
  const fs::path fused_f16 = fuse("fused_f16", f16);
  EXPECT_TRUE(mlx_load(fused_f16)["quantized"].empty());
  expect_same_logits(fused_f16);

  // The tolerance can fail: the adapter's effect is far larger than it.
  const std::vector<float> base = engine_logits(path("base_4bit")), fused = mlx_logits(fused_f16);
  if (std::getenv("MB_MLX_VERBOSE"))
    fmt::print("adapter effect: max |logit diff| / max |logit| = {:.3g}\n", max_diff(base, fused) / max_abs(base));
  EXPECT_GT(max_diff(base, fused), 100 * kLogitRelTol * max_abs(base));

  FuseOptions one_pass = f16;  // fuse → 8 bits in one pass
  one_pass.quantize = QuantParams{8, 64, QuantKernel::kGpu};
  const fs::path fused_8bit = fuse("fused_8bit", one_pass);
  EXPECT_EQ(count_quantized(mlx_load(fused_8bit), 8, 64), kQuantizable);
  expect_same_logits(fused_8bit);

  FuseOptions inplace;  // re-quantized to the base's 4 bits
  inplace.mode = FuseMode::kInplace;
  const fs::path fused_4bit = fuse("fused_4bit", inplace);
  EXPECT_EQ(count_quantized(mlx_load(fused_4bit), 4, 64), kQuantizable);
  expect_same_logits(fused_4bit);
}

// The bundled example's targets, built by the real binary. Its model is 128
// wide, so only the 8-bit and float targets fit this MLX's quantizer.
// hf_f16 is the Hugging Face layout (docs/formats/hf-layout.md): one
// {"format":"pt"} shard and no index, which MLX loads as well.
TEST_F(MlxModels, BundledExampleTargetsLoadAndComputeAsOurs) {
  const fs::path project = path("tiny");
  fs::create_directories(project);
  e2e::copy_tiny_example(project);
  e2e::CliRun r = e2e::modelbuild(project, {"fused_8bit", "fused_f16", "hf_f16"});
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* target : {"fused_8bit", "fused_f16", "hf_f16"}) {
    SCOPED_TRACE(target);
    json s = mlx_load(project / "build" / target);
    EXPECT_EQ(s["quantized"].size(), std::string(target) == "fused_8bit" ? 29u : 0u) << s.dump();
    expect_same_logits(project / "build" / target, 1024);  // the example's vocabulary
  }
}

// The loader is strict: a missing, extra or misshapen tensor fails, naming it.
TEST_F(MlxModels, BrokenModelsFailToLoadNamingTheTensor) {
  make_base_and_adapter();
  // A copy of the 4-bit base whose model.safetensors lacks `dropped` and
  // stores model.norm.weight with `norm_size` values.
  auto broken = [&](const std::string& name, const std::string& dropped, int64_t norm_size) {
    const fs::path dir = path(name);
    fs::copy(path("base_4bit"), dir, fs::copy_options::recursive);
    auto f = SafetensorsFile::open(*fs_, path("base_4bit") / "model.safetensors");
    EXPECT_TRUE(f.ok());
    std::vector<TensorData> data;
    for (const TensorInfo& t : f->tensors()) {
      if (t.name == dropped) continue;
      if (t.name == "model.norm.weight")
        data.push_back({{t.name, t.dtype, {norm_size}}, f->data(t).first(static_cast<size_t>(norm_size) * 2)});
      else
        data.push_back({{t.name, t.dtype, t.shape}, f->data(t)});
    }
    fs::remove(dir / "model.safetensors");
    EXPECT_TRUE(write_safetensors(*fs_, dir / "model.safetensors", data, {}).ok());
    return check_model({"load", dir.string()});
  };
  NodeRun r = broken("no_bias", "model.layers.0.self_attn.q_proj.bias", kHidden);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("Missing parameters: model.layers.0.self_attn.q_proj.bias"), std::string::npos) << r.output;

  // Without its scales the layer stays a float Linear, which has no biases.
  r = broken("no_scales", "model.layers.1.mlp.up_proj.scales", kHidden);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("Received parameters not in model: model.layers.1.mlp.up_proj.biases"), std::string::npos)
      << r.output;

  r = broken("short_norm", "", kHidden / 2);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("received shape 128 for parameter model.norm.weight"), std::string::npos) << r.output;

  // The untouched copy loads: the failures above are the edits'.
  EXPECT_EQ(broken("intact", "", kHidden).code, 0);
}

}  // namespace
}  // namespace mb
