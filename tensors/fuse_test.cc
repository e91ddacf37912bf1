#include "tensors/fuse.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>

#include "base/fs_test_support.h"
#include "base/reporter.h"
#include "tensors/fuse_test_support.h"
#include "tensors/quantize_model.h"

namespace mb {
namespace {

using namespace fuse_test;  // NOLINT: test helpers

// docs/formats/adapters.md §4: W = [[1,0,0],[0,1,0]], r = 2, alpha = 4,
// A = [[1,2,0],[0,1,1]], B = [[0.5,0],[0,-1]].
LoraModule worked_example(float scale) {
  LoraModule m;
  m.module = "m";
  m.rank = 2, m.in = 3, m.out = 2, m.scale = scale;
  m.a = {1, 2, 0, 0, 1, 1};
  m.b = {0.5f, 0, 0, -1};
  return m;
}

std::vector<float> fuse_all_rows(const std::vector<const LoraModule*>& mods, const std::vector<float>& w, int64_t out,
                                 int64_t in) {
  std::vector<float> result(w.size()), scratch(static_cast<size_t>(in));
  for (int64_t o = 0; o < out; ++o)
    fuse_row(mods, o, std::span<const float>(w).subspan(o * in, in), std::span<float>(result).subspan(o * in, in),
             scratch);
  return result;
}

TEST(FuseRow, PeftWorkedExamplePlain) {
  const LoraModule m = worked_example(2.0f);  // 4 / 2
  const std::vector<float> w = {1, 0, 0, 0, 1, 0};
  // Every value is exact in f32: the result must be exact.
  EXPECT_EQ(fuse_all_rows({&m}, w, 2, 3), (std::vector<float>{2, 2, 0, 0, -1, -2}));
}

TEST(FuseRow, PeftWorkedExampleRsLora) {
  const float s = static_cast<float>(4.0 / std::sqrt(2.0));  // 2.8284
  const LoraModule m = worked_example(s);
  const std::vector<float> w = {1, 0, 0, 0, 1, 0};
  const std::vector<float> got = fuse_all_rows({&m}, w, 2, 3);
  // delta = s·[[0.5,1,0],[0,-1,-1]]; s·0.5 and s·1 are exact scalings of the
  // f32 s, so the result equals 1 + s/2 etc. rounded once.
  const std::vector<float> want = {1 + s * 0.5f, s, 0, 0, 1 - s, -s};
  EXPECT_EQ(got, want);
  EXPECT_NEAR(got[0], 1 + 1.41421356, 1e-6);
  EXPECT_NEAR(got[4], 1 - 2.82842712, 1e-6);
}

TEST(FuseRow, StackedAdaptersAddInOrder) {
  const LoraModule a = worked_example(2.0f);
  LoraModule b = worked_example(1.0f);
  b.b = {0, 1, 1, 0};  // B@A = [[0,1,1],[1,2,0]]
  const std::vector<float> w = {1, 0, 0, 0, 1, 0};
  EXPECT_EQ(fuse_all_rows({&a, nullptr, &b}, w, 2, 3), (std::vector<float>{2, 3, 1, 1, 1, -2}));
}

TEST(FuseRow, DoraMatchesReference) {
  // V = W + s·B·A, W' = m[o]/‖V[o]‖ · V[o], reference in double.
  LoraModule m = worked_example(2.0f);
  m.magnitude = {3.0f, 0.5f};
  const std::vector<float> w = {1, 0, 0, 0, 1, 0};
  const std::vector<float> got = fuse_all_rows({&m}, w, 2, 3);
  const double v[2][3] = {{2, 2, 0}, {0, -1, -2}};
  for (int o = 0; o < 2; ++o) {
    const double n = std::sqrt(v[o][0] * v[o][0] + v[o][1] * v[o][1] + v[o][2] * v[o][2]);
    for (int i = 0; i < 3; ++i) {
      const double want = m.magnitude[o] / n * v[o][i];
      // One f32 rounding of a double result: within half an ulp of f32.
      EXPECT_NEAR(got[o * 3 + i], want, std::abs(want) * 0x1p-24 + 1e-30) << o << "," << i;
    }
  }
}

// ---- Whole-model fusion -----------------------------------------------------

// The reference: exact base values and the fused target in double, plus a
// magnitude for the f32 error bound (see tolerance()).
struct Reference {
  std::vector<double> w0, fused, magnitude;
  int64_t rows = 0, cols = 0, rank_total = 0;
};

// W0 straight from the file: q·s + b in double from the unpacked codes (a
// quantized base) or the stored value; no code shared with fuse.cc.
Reference reference_for(const FileSystem& fs, const fs::path& base, const ModelSpec& spec, const std::string& name,
                        const std::vector<const LoraModule*>& modules) {
  Reference ref;
  auto model = ModelDir::open(fs, base);
  EXPECT_TRUE(model.ok());
  const TensorRef w = model->weights().find(name);
  EXPECT_TRUE(w);
  if (w.info->dtype == DType::kU32) {
    const std::string m = name.substr(0, name.size() - 7);
    const TensorRef s = model->weights().find(m + ".scales"), b = model->weights().find(m + ".biases");
    const int bits = spec.quant->bits, gs = spec.quant->group_size;
    ref.rows = w.info->shape[0];
    ref.cols = w.info->shape[1] * 32 / bits;
    std::vector<uint8_t> codes(static_cast<size_t>(ref.rows * ref.cols));
    unpack_codes(w.bytes, bits, codes);
    std::vector<float> sv(codes.size() / static_cast<size_t>(gs)), bv(sv.size());
    EXPECT_TRUE(to_f32(s.info->dtype, s.bytes, sv).ok());
    EXPECT_TRUE(to_f32(b.info->dtype, b.bytes, bv).ok());
    for (size_t i = 0; i < codes.size(); ++i) {
      const double qs = static_cast<double>(codes[i]) * sv[i / static_cast<size_t>(gs)];
      ref.w0.push_back(qs + bv[i / static_cast<size_t>(gs)]);
      ref.magnitude.push_back(2 * (std::abs(qs) + std::abs(bv[i / static_cast<size_t>(gs)])));
    }
  } else {
    ref.rows = w.info->shape[0];
    ref.cols = w.info->shape[1];
    std::vector<float> v(static_cast<size_t>(ref.rows * ref.cols));
    EXPECT_TRUE(to_f32(w.info->dtype, w.bytes, v).ok());
    for (float x : v) ref.w0.push_back(x), ref.magnitude.push_back(0);
  }
  ref.fused = ref.w0;
  for (const LoraModule* m : modules) {
    ref.rank_total += m->rank;
    for (int64_t o = 0; o < ref.rows; ++o) {
      double norm_sq = 0;
      for (int64_t i = 0; i < ref.cols; ++i) {
        double d = 0, mag = 0;
        for (int64_t k = 0; k < m->rank; ++k) {
          const double t = static_cast<double>(m->scale) * m->b[static_cast<size_t>(o * m->rank + k)] *
                           m->a[static_cast<size_t>(k * m->in + i)];
          d += t;
          mag += std::abs(t);
        }
        const size_t at = static_cast<size_t>(o * ref.cols + i);
        ref.fused[at] += d;
        ref.magnitude[at] += mag + std::abs(ref.fused[at]);
        norm_sq += ref.fused[at] * ref.fused[at];
      }
      if (m->is_dora())
        for (int64_t i = 0; i < ref.cols; ++i) {
          const size_t at = static_cast<size_t>(o * ref.cols + i);
          ref.fused[at] *= m->magnitude[static_cast<size_t>(o)] / std::sqrt(norm_sq);
          ref.magnitude[at] += std::abs(ref.fused[at]);
        }
    }
  }
  return ref;
}

// f32 arithmetic error of the fused value (each of the ~rank+4 f32
// operations on a path rounds by at most 2^-24 of the magnitudes involved)
// plus one rounding to the output dtype, plus an absolute floor for f16's
// subnormals.
double tolerance(const Reference& ref, size_t i, DType out) {
  const double f32 = static_cast<double>(ref.rank_total + 4) * std::ldexp(1.0, -24) * ref.magnitude[i];
  const double floor = out == DType::kF16 ? std::ldexp(1.0, -25) : 0.0;
  return unit_roundoff(out) * std::abs(ref.fused[i]) * (1 + 1e-6) + f32 + floor;
}

void expect_matches_reference(const ReadBack& got, const Reference& ref, DType out, const std::string& name) {
  ASSERT_EQ(got.values.size(), ref.fused.size()) << name;
  int bad = 0;
  for (size_t i = 0; i < ref.fused.size() && bad < 5; ++i)
    if (!(std::abs(got.values[i] - ref.fused[i]) <= tolerance(ref, i, out))) {
      ++bad;
      ADD_FAILURE() << name << "[" << i << "]: got " << got.values[i] << ", reference " << ref.fused[i]
                    << ", tolerance " << tolerance(ref, i, out);
    }
}

std::vector<LoraModule> qv_down_modules(int64_t hidden, int64_t inter, int64_t rank, float scale, uint32_t seed) {
  return {make_module("model.layers.0.mlp.down_proj", hidden, inter, rank, scale, seed),
          make_module("model.layers.0.self_attn.q_proj", hidden, hidden, rank, scale, seed + 1),
          make_module("model.layers.1.self_attn.v_proj", hidden / 2, hidden, rank, scale, seed + 2)};
}

std::vector<const LoraModule*> modules_for(const std::vector<Adapter>& adapters, const std::string& weight) {
  std::vector<const LoraModule*> out;
  for (const Adapter& a : adapters)
    if (const LoraModule* m = a.find(weight.substr(0, weight.size() - 7))) out.push_back(m);
  return out;
}

class FuseModelTest : public ::testing::Test {
 protected:
  Result<FuseResult> fuse(const fs::path& base, const std::vector<fs::path>& adapter_dirs, const fs::path& out,
                          FuseOptions options) {
    auto adapters = load_adapters(fs_, adapter_dirs);
    if (!adapters.ok()) return adapters.error();
    loaded_ = std::move(adapters).value();
    EXPECT_TRUE(fs_.create_dirs(out).ok());
    return fuse_model(fs_, base, loaded_, out, options, reporter_);
  }

  MemoryFileSystem fs_;
  RecordingReporter reporter_;
  std::vector<Adapter> loaded_;
};

TEST_F(FuseModelTest, DequantizeModeMatchesReferenceForEveryDtype) {
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{4, 32, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/lora", qv_down_modules(64, 128, 4, 2.0f, 7));
  for (DType out : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(out));
    const fs::path dir = fs::path("/out") / dtype_name(out);
    FuseOptions options;
    options.dtype = out;
    auto r = fuse("/base", {"/lora"}, dir, options);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->adapted, 3);
    EXPECT_EQ(r->dtype, out);
    auto model = ModelDir::open(fs_, dir);
    ASSERT_TRUE(model.ok()) << model.error().to_string();
    EXPECT_FALSE(model->config().contains("quantization"));
    EXPECT_FALSE(model->config().contains("quantization_config"));
    EXPECT_EQ(model->config()["torch_dtype"], *torch_dtype_name(out));
    EXPECT_EQ(*fs_.contents(dir / "tokenizer.json"), "{\"model\":{}}");
    for (const TensorRef& t : model->weights().tensors()) {
      EXPECT_EQ(t.info->dtype, out) << t.info->name;  // everything float, in `out`
      EXPECT_EQ(t.info->name.find(".scales"), std::string::npos);
    }
    // Adapted and unadapted quantized weights, against the reference.
    for (const std::string name : {"model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight",
                                   "model.layers.1.self_attn.v_proj.weight", "model.embed_tokens.weight"}) {
      const Reference ref = reference_for(fs_, "/base", spec, name, modules_for(loaded_, name));
      expect_matches_reference(read_tensor(fs_, dir, name), ref, out, name);
    }
    // A bf16 norm converts exactly (to f32 and to bf16) or rounds once (f16).
    const ReadBack norm = read_tensor(fs_, dir, "model.norm.weight");
    const ReadBack base_norm = read_tensor(fs_, "/base", "model.norm.weight");
    for (size_t i = 0; i < norm.values.size(); ++i) EXPECT_EQ(norm.values[i], round_to_dtype(base_norm.values[i], out));
  }
}

TEST_F(FuseModelTest, FloatBaseMatchesReference) {
  ModelSpec spec = tiny_qwen(DType::kF32);
  write_model(fs_, "/base", spec);
  write_peft_adapter(fs_, "/lora", qv_down_modules(64, 128, 8, 0.5f, 3), DType::kBF16);
  auto r = fuse("/base", {"/lora"}, "/out", {});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->dtype, DType::kF32);  // torch_dtype float32
  for (const std::string name : {"model.layers.0.mlp.down_proj.weight", "model.layers.1.self_attn.v_proj.weight"}) {
    const Reference ref = reference_for(fs_, "/base", spec, name, modules_for(loaded_, name));
    expect_matches_reference(read_tensor(fs_, "/out", name), ref, DType::kF32, name);
  }
  // Unadapted tensors of the output dtype are copied byte for byte.
  auto base = ModelDir::open(fs_, "/base");
  auto out = ModelDir::open(fs_, "/out");
  EXPECT_EQ(as_chars(out->weights().find("model.layers.1.mlp.up_proj.weight").bytes),
            as_chars(base->weights().find("model.layers.1.mlp.up_proj.weight").bytes));
  // Float dequantize-mode fusion into f32 keeps the whole delta.
  ASSERT_TRUE(r->retention.retained().has_value());
  EXPECT_EQ(*r->retention.retained(), 1.0);
  EXPECT_NE(r->retention.verdict().find("Float32 fusion kept 100%"), std::string::npos) << r->retention.verdict();
}

TEST_F(FuseModelTest, DoraMatchesReference) {
  ModelSpec spec = tiny_qwen(DType::kF32);
  write_model(fs_, "/base", spec);
  std::vector<LoraModule> mods = qv_down_modules(64, 128, 4, 2.0f, 11);
  for (LoraModule& m : mods) m.magnitude = make_values(static_cast<size_t>(m.out), 99, 1.0f);
  for (LoraModule& m : mods)
    for (float& x : m.magnitude) x = 0.5f + std::abs(x);
  write_mlx_adapter(fs_, "/dora", mods);
  write_peft_adapter(fs_, "/peft_dora", mods);
  FuseOptions options;
  auto r = fuse("/base", {"/dora"}, "/out", options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  for (const std::string name : {"model.layers.0.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight"}) {
    const Reference ref = reference_for(fs_, "/base", spec, name, modules_for(loaded_, name));
    expect_matches_reference(read_tensor(fs_, "/out", name), ref, DType::kF32, name);
  }
  auto p = fuse("/base", {"/peft_dora"}, "/out_peft", options);
  ASSERT_TRUE(p.ok()) << p.error().to_string();
  EXPECT_EQ(dir_contents(fs_, "/out"), dir_contents(fs_, "/out_peft"));
}

// The plain f32 reference for in-place fusion: W* by naive loops in the
// documented order (bit-identical by construction), rounded to the scales'
// dtype, then the MLX quantizer (mlx_quant.h's whole-tensor helper).
TEST_F(FuseModelTest, InplaceModeRequantizesLikeMlx) {
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{4, 64, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/lora", qv_down_modules(64, 128, 4, 4.0f, 5));
  for (QuantKernel kernel : {QuantKernel::kGpu, QuantKernel::kCpu}) {
    SCOPED_TRACE(quant_kernel_name(kernel));
    const fs::path dir = fs::path("/inplace") / quant_kernel_name(kernel);
    FuseOptions options;
    options.mode = FuseMode::kInplace;
    options.kernel = kernel;
    auto r = fuse("/base", {"/lora"}, dir, options);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    auto base = ModelDir::open(fs_, "/base");
    auto out = ModelDir::open(fs_, dir);
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->config()["quantization"], base->config()["quantization"]);
    EXPECT_EQ(out->weights().size(), base->weights().size());
    for (const TensorRef& t : base->weights().tensors()) {
      const std::string& name = t.info->name;
      const std::string module = name.substr(0, name.rfind('.'));
      const std::vector<const LoraModule*> mods = modules_for(loaded_, module + ".weight");
      const TensorRef o = out->weights().find(name);
      ASSERT_TRUE(o) << name;
      if (mods.empty()) {
        EXPECT_EQ(as_chars(o.bytes), as_chars(t.bytes)) << name;  // copied through
        continue;
      }
      if (name.ends_with(".weight")) {
        const ReadBack w0 = read_tensor(fs_, "/base", name);
        const int64_t rows = w0.shape[0], cols = w0.shape[1];
        std::vector<float> target(w0.values.size());
        for (int64_t o2 = 0; o2 < rows; ++o2)
          for (int64_t i = 0; i < cols; ++i) {
            float acc = w0.values[static_cast<size_t>(o2 * cols + i)];
            for (const LoraModule* m : mods) {
              float d = 0;
              for (int64_t k = 0; k < m->rank; ++k) {
                const float c = m->scale * m->b[static_cast<size_t>(o2 * m->rank + k)];
                d = d + c * m->a[static_cast<size_t>(k * cols + i)];
              }
              acc = acc + d;
            }
            target[static_cast<size_t>(o2 * cols + i)] = round_to_dtype(acc, DType::kBF16);
          }
        const std::string bytes = to_bytes(DType::kBF16, target);
        auto want = quantize_tensor(name, DType::kBF16, w0.shape, as_bytes(bytes), {4, 64, kernel});
        ASSERT_TRUE(want.ok());
        const std::string_view got = as_chars(o.bytes);
        EXPECT_EQ(got, std::string_view(reinterpret_cast<const char*>(want->weight.data()), want->weight.size()));
        EXPECT_EQ(as_chars(out->weights().find(module + ".scales").bytes),
                  std::string_view(reinterpret_cast<const char*>(want->scales.data()), want->scales.size()));
        EXPECT_EQ(as_chars(out->weights().find(module + ".biases").bytes),
                  std::string_view(reinterpret_cast<const char*>(want->biases.data()), want->biases.size()));
      }
    }
    EXPECT_EQ(r->retention.what, "4-bit in-place fusion");
    EXPECT_EQ(r->retention.tensors.size(), 3u);
    // The standalone measurement of the written model agrees exactly.
    auto measured = measure_retention(fs_, dir, "/base", loaded_, "x", 4, 2, reporter_);
    ASSERT_TRUE(measured.ok()) << measured.error().to_string();
    EXPECT_EQ(*measured->retained(), *r->retention.retained());
  }
}

TEST_F(FuseModelTest, PeftAndMlxAdaptersWithTheSameWeightsGiveIdenticalBytes) {
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{4, 32, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);
  // PEFT: lora_alpha / r = 32 / 16 = 2 = the MLX scale.
  const std::vector<LoraModule> mods = qv_down_modules(64, 128, 16, 2.0f, 21);
  write_mlx_adapter(fs_, "/mlx", mods);
  write_peft_adapter(fs_, "/peft", mods);
  for (FuseMode mode : {FuseMode::kDequantize, FuseMode::kInplace}) {
    FuseOptions options;
    options.mode = mode;
    const fs::path a = fs::path("/a") / fuse_mode_name(mode), b = fs::path("/b") / fuse_mode_name(mode);
    ASSERT_TRUE(fuse("/base", {"/mlx"}, a, options).ok());
    ASSERT_TRUE(fuse("/base", {"/peft"}, b, options).ok());
    const auto ca = dir_contents(fs_, a), cb = dir_contents(fs_, b);
    EXPECT_EQ(ca.size(), 4u);  // config, index, shard, tokenizer
    EXPECT_TRUE(ca == cb) << fuse_mode_name(mode);
  }
}

TEST_F(FuseModelTest, TwoAdaptersStackInOrder) {
  ModelSpec spec = tiny_qwen(DType::kF32);
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/one", qv_down_modules(64, 128, 4, 2.0f, 31));
  write_peft_adapter(fs_, "/two",
                     {make_module("model.layers.0.mlp.down_proj", 64, 128, 8, 0.25f, 41),
                      make_module("model.layers.1.mlp.up_proj", 128, 64, 8, 0.25f, 43)});
  auto r = fuse("/base", {"/one", "/two"}, "/out", {});
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->adapted, 4);
  for (const std::string name : {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.up_proj.weight",
                                 "model.layers.0.self_attn.q_proj.weight"}) {
    const auto mods = modules_for(loaded_, name);
    EXPECT_EQ(mods.size(), name.find("down_proj") != std::string::npos ? 2u : 1u);
    expect_matches_reference(read_tensor(fs_, "/out", name), reference_for(fs_, "/base", spec, name, mods), DType::kF32,
                             name);
  }
}

TEST_F(FuseModelTest, DeterministicAcrossRunsAndThreadCounts) {
  // Tensors of many 32 Ki-element chunks, so threads really split them.
  ModelSpec spec = tiny_qwen(DType::kBF16, 1, 256, 2048);
  spec.quant = QuantParams{4, 64, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/lora",
                    {make_module("model.layers.0.mlp.up_proj", 2048, 256, 8, 1.0f, 1),
                     make_module("model.layers.1.mlp.down_proj", 256, 2048, 8, 1.0f, 2)});
  for (FuseMode mode : {FuseMode::kDequantize, FuseMode::kInplace}) {
    std::map<std::string, std::string> first;
    std::optional<double> retained;
    for (int threads : {1, 4, 4, 3}) {
      FuseOptions options;
      options.mode = mode;
      options.threads = threads;
      const fs::path dir = fmt::format("/out/{}/{}", fuse_mode_name(mode), threads);
      ASSERT_TRUE(fs_.remove_all(dir).ok());
      auto r = fuse("/base", {"/lora"}, dir, options);
      ASSERT_TRUE(r.ok()) << r.error().to_string();
      const auto contents = dir_contents(fs_, dir);
      if (first.empty()) {
        first = contents;
        retained = r->retention.retained();
      } else {
        EXPECT_TRUE(contents == first) << fuse_mode_name(mode) << " with " << threads << " threads";
        EXPECT_EQ(r->retention.retained(), retained);
      }
    }
  }
}

TEST_F(FuseModelTest, FusingStraightToBitsEqualsFusingThenQuantizing) {
  ModelSpec spec = tiny_qwen(DType::kBF16, 1, 64, 96);  // down_proj's 96 inputs: gs 64 leaves it float
  spec.quant = QuantParams{4, 32, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/lora",
                    {make_module("model.layers.0.self_attn.q_proj", 64, 64, 4, 2.0f, 1),
                     make_module("model.layers.1.mlp.down_proj", 64, 96, 4, 2.0f, 2)});
  for (int bits : {8, 6}) {
    FuseOptions two;
    two.dtype = DType::kF16;
    ASSERT_TRUE(fuse("/base", {"/lora"}, "/f16", two).ok());
    QuantizeOptions q;
    q.bits = bits;
    q.group_size = 64;
    ASSERT_TRUE(fs_.create_dirs("/q").ok());
    auto quantized = quantize_model(fs_, "/f16", "/q", q, nullptr, reporter_);
    ASSERT_TRUE(quantized.ok()) << quantized.error().to_string();

    FuseOptions one = two;
    one.quantize = QuantParams{bits, 64, QuantKernel::kGpu};
    auto r = fuse("/base", {"/lora"}, "/one", one);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(*fs_.contents("/one/model.safetensors"), *fs_.contents("/q/model.safetensors")) << bits;
    EXPECT_EQ(nlohmann::json::parse(*fs_.contents("/one/config.json")),
              nlohmann::json::parse(*fs_.contents("/q/config.json")))
        << bits;
    // The retention it reports is the standalone measurement's.
    auto standalone = measure_retention(fs_, "/q", "/base", loaded_, "q", bits, 1, reporter_);
    ASSERT_TRUE(standalone.ok()) << standalone.error().to_string();
    ASSERT_TRUE(r->retention.retained().has_value());
    EXPECT_DOUBLE_EQ(*r->retention.retained(), *standalone->retained()) << bits;
    EXPECT_EQ(r->retention.what, fmt::format("{}-bit quantization", bits));
    // Both paths say that down_proj stays float (gs 64 does not divide 96).
    int warned = 0;
    for (const Event& e : reporter_.events())
      warned += e.level == Level::kWarn && e.message.find("does not divide") != std::string::npos &&
                e.message.find("model.layers.1.mlp.down_proj.weight") != std::string::npos;
    EXPECT_EQ(warned, 2 * (bits == 8 ? 1 : 2)) << "quantize and fuse each warn once per round";
    for (const char* d : {"/f16", "/q", "/one"}) ASSERT_TRUE(fs_.remove_all(d).ok());
  }

  FuseOptions bad;
  bad.mode = FuseMode::kInplace;
  bad.quantize = QuantParams{8, 64, QuantKernel::kGpu};
  auto r = fuse("/base", {"/lora"}, "/bad", bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
}

TEST_F(FuseModelTest, ShardedBaseGivesTheSameModel) {
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{8, 32, QuantKernel::kGpu};
  write_model(fs_, "/base1", spec);
  spec.shards = 3;
  write_model(fs_, "/base3", spec);
  ASSERT_TRUE(fs_.stat("/base3/model-00002-of-00003.safetensors").ok());
  write_mlx_adapter(fs_, "/lora", qv_down_modules(64, 128, 4, 2.0f, 51));
  for (FuseMode mode : {FuseMode::kDequantize, FuseMode::kInplace}) {
    FuseOptions options;
    options.mode = mode;
    ASSERT_TRUE(fuse("/base1", {"/lora"}, fs::path("/o1") / fuse_mode_name(mode), options).ok());
    auto r = fuse("/base3", {"/lora"}, fs::path("/o3") / fuse_mode_name(mode), options);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const auto c1 = dir_contents(fs_, fs::path("/o1") / fuse_mode_name(mode));
    const auto c3 = dir_contents(fs_, fs::path("/o3") / fuse_mode_name(mode));
    EXPECT_EQ(c1.size(), c3.size());
    for (const auto& [name, bytes] : c1) EXPECT_TRUE(c3.count(name) && c3.at(name) == bytes) << name;
  }
  // A small shard limit makes a sharded output.
  FuseOptions small;
  small.max_shard_bytes = 40000;
  ASSERT_TRUE(fuse("/base3", {"/lora"}, "/small", small).ok());
  auto small_model = ModelDir::open(fs_, "/small");
  ASSERT_TRUE(small_model.ok());
  EXPECT_GT(small_model->weights().shards().size(), 1u);
  EXPECT_TRUE(fs_.stat("/small/model.safetensors.index.json").ok());
}

// ---- Retention through fusion -------------------------------------------------

// A base whose every group lies exactly on a 4-bit grid (step 1/128, each
// group holding both -7/128 and 8/128 at positions 0 and 1), and an adapter
// whose delta is zero at those two positions and below half a step
// elsewhere: in-place 4-bit fusion must reproduce the base exactly.
struct GridCase {
  ModelSpec spec;
  LoraModule module;
};
GridCase grid_case() {
  GridCase g;
  g.spec.config = {{"model_type", "qwen2"}, {"torch_dtype", "bfloat16"}};
  const int64_t out = 64, in = 128;
  FloatTensor w{"model.layers.0.mlp.down_proj.weight", DType::kBF16, {out, in}, {}};
  const std::vector<float> r = make_values(static_cast<size_t>(out * in), 5, 1.0f);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      const int64_t pos = i % 64;
      int q = pos == 0   ? -7
              : pos == 1 ? 8
                         : static_cast<int>(std::lround((r[static_cast<size_t>(o * in + i)] + 1) * 6.49)) - 6;
      w.values.push_back(static_cast<float>(q) / 128.0f);
    }
  g.spec.tensors.push_back(w);
  g.spec.tensors.push_back(
      {"model.norm.weight", DType::kBF16, {in}, std::vector<float>(static_cast<size_t>(in), 1.0f)});
  g.spec.quant = QuantParams{4, 64, QuantKernel::kGpu};
  g.module = make_module("model.layers.0.mlp.down_proj", out, in, 4, 1.0f, 77);
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t i = 0; i < in; ++i)
      if (i % 64 < 2) g.module.a[static_cast<size_t>(k * in + i)] = 0;
  // Scale so that max |delta| = 0.4 step.
  double max_delta = 0;
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i) {
      double d = 0;
      for (int64_t k = 0; k < 4; ++k)
        d += static_cast<double>(g.module.b[static_cast<size_t>(o * 4 + k)]) *
             g.module.a[static_cast<size_t>(k * in + i)];
      max_delta = std::max(max_delta, std::abs(d));
    }
  g.module.scale = static_cast<float>(0.4 / 128.0 / max_delta);
  return g;
}

TEST_F(FuseModelTest, RetentionNearZeroForSmallDeltaFusedInPlaceInto4Bit) {
  GridCase g = grid_case();
  write_model(fs_, "/base", g.spec);
  write_mlx_adapter(fs_, "/lora", {g.module});
  FuseOptions options;
  options.mode = FuseMode::kInplace;
  auto r = fuse("/base", {"/lora"}, "/out", options);
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  // Every code, scale and bias is unchanged: the delta was rounded away.
  auto base = ModelDir::open(fs_, "/base");
  auto out = ModelDir::open(fs_, "/out");
  for (const char* n : {"model.layers.0.mlp.down_proj.weight", "model.layers.0.mlp.down_proj.scales"})
    EXPECT_EQ(as_chars(out->weights().find(n).bytes), as_chars(base->weights().find(n).bytes)) << n;
  ASSERT_TRUE(r->retention.retained().has_value());
  EXPECT_EQ(*r->retention.retained(), 0.0);
  EXPECT_EQ(*r->retention.cosine(), 0.0);
  const std::string verdict = r->retention.verdict();
  EXPECT_NE(verdict.find("4-bit in-place fusion kept none"), std::string::npos) << verdict;
  EXPECT_NE(verdict.find("behave like the base model"), std::string::npos) << verdict;
  const nlohmann::json j = r->retention.to_json();
  EXPECT_EQ(j["retained"], 0.0);
  EXPECT_EQ(j["tensors"][0]["name"], "model.layers.0.mlp.down_proj.weight");
}

TEST_F(FuseModelTest, RetentionOfFloatFusionIsOneUpToTheDtypeRounding) {
  GridCase g = grid_case();
  write_model(fs_, "/base", g.spec);
  write_mlx_adapter(fs_, "/lora", {g.module});
  for (DType out : {DType::kF32, DType::kF16, DType::kBF16}) {
    FuseOptions options;
    options.dtype = out;
    auto r = fuse("/base", {"/lora"}, fs::path("/f") / dtype_name(out), options);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    const RetentionSums& s = r->retention.total;
    // ‖Ŵ − W*‖ ≤ u·‖W*‖ for RNE with unit roundoff u, so retention ≥
    // 1 − u·‖W*‖/‖ΔW‖; f32 stores W* exactly.
    double target_sq = 0;
    const ReadBack w0 = read_tensor(fs_, "/base", "model.layers.0.mlp.down_proj.weight");
    for (float v : w0.values) target_sq += static_cast<double>(v) * v;  // ≈ ‖W*‖² (delta is tiny)
    const double bound = 1 - unit_roundoff(out) * 1.01 * std::sqrt(target_sq) / std::sqrt(s.delta_sq);
    if (out == DType::kF32) {
      EXPECT_EQ(*r->retention.retained(), 1.0);
    } else {
      EXPECT_GE(*r->retention.retained(), bound) << dtype_name(out);
    }
  }
}

TEST_F(FuseModelTest, ErrorsNameTheModuleAndFile) {
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{4, 32, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);

  // Shape mismatch (down_proj is [64, 128]).
  write_mlx_adapter(fs_, "/shape", {make_module("model.layers.0.mlp.down_proj", 64, 96, 4, 1.0f, 1)});
  auto r = fuse("/base", {"/shape"}, "/o1", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_EQ(r.error().where, "/shape/adapters.safetensors");
  EXPECT_NE(r.error().message.find("model.layers.0.mlp.down_proj"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("[64, 128]"), std::string::npos) << r.error().message;

  // Module missing from the base.
  write_peft_adapter(fs_, "/missing", {make_module("model.layers.7.self_attn.q_proj", 64, 64, 4, 1.0f, 1)});
  r = fuse("/base", {"/missing"}, "/o2", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_EQ(r.error().where, "/missing/adapter_model.safetensors");
  EXPECT_NE(r.error().message.find("model.layers.7.self_attn.q_proj"), std::string::npos);

  // In-place fusion into a float base.
  write_model(fs_, "/float", tiny_qwen(DType::kF16));
  write_mlx_adapter(fs_, "/ok", qv_down_modules(64, 128, 4, 1.0f, 1));
  FuseOptions inplace;
  inplace.mode = FuseMode::kInplace;
  r = fuse("/float", {"/ok"}, "/o3", inplace);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_EQ(r.error().where, "/float/config.json");

  // Unsupported output dtype.
  FuseOptions f64;
  f64.dtype = DType::kF64;
  r = fuse("/base", {"/ok"}, "/o4", f64);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);

  // A truncated base shard: the reader's error names the file.
  write_model(fs_, "/trunc", spec);
  const std::string full = *fs_.contents("/trunc/model.safetensors");
  fs_.add_file("/trunc/model.safetensors", full.substr(0, full.size() - 100));
  r = fuse("/trunc", {"/ok"}, "/o5", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_NE(r.error().to_string().find("/trunc/model.safetensors"), std::string::npos) << r.error().to_string();

  // Nothing was written for any of them.
  for (const char* d : {"/o1", "/o2", "/o3", "/o4", "/o5"}) {
    auto names = fs_.list_dir(d);
    ASSERT_TRUE(names.ok()) << d;
    EXPECT_TRUE(names->empty()) << d;
  }
}

TEST_F(FuseModelTest, UnsupportedBaseDtypeNamesTheTensorAndFile) {
  // F64 converts, but no real model uses it: fusing would narrow it silently
  // (dequantize) or copy it into a model mlx_lm cannot load (in place).
  ModelSpec spec = tiny_qwen(DType::kBF16);
  for (FloatTensor& t : spec.tensors)
    if (t.name == "model.norm.weight") t.dtype = DType::kF64;
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/lora", qv_down_modules(64, 128, 4, 1.0f, 1));
  auto r = fuse("/base", {"/lora"}, "/out", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_EQ(r.error().where, "/base/model.safetensors");
  EXPECT_NE(r.error().message.find("model.norm.weight has dtype F64"), std::string::npos) << r.error().message;
  auto names = fs_.list_dir("/out");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(FuseModelTest, FailedWriteLeavesNoCompleteLookingOutput) {
  ModelSpec spec = tiny_qwen(DType::kBF16);
  spec.quant = QuantParams{4, 32, QuantKernel::kGpu};
  write_model(fs_, "/base", spec);
  write_mlx_adapter(fs_, "/lora", qv_down_modules(64, 128, 4, 1.0f, 1));
  auto adapters = load_adapters(fs_, {"/lora"});
  ASSERT_TRUE(adapters.ok());
  ASSERT_TRUE(fs_.create_dirs("/out").ok());
  for (int n : {1, 5, 20}) {
    FaultyFileSystem faulty(fs_);
    faulty.fail_write_after(n, /*sticky=*/true);
    auto r = fuse_model(faulty, "/base", *adapters, "/out", {}, reporter_);
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code, Errc::kIo);
    auto names = fs_.list_dir("/out");
    ASSERT_TRUE(names.ok());
    for (const std::string& name : *names) {
      EXPECT_NE(name, "config.json") << n;
      EXPECT_NE(name, "model.safetensors") << n;
      EXPECT_NE(name, "model.safetensors.index.json") << n;
    }
  }
}

}  // namespace
}  // namespace mb
