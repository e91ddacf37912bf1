#include "tensors/adapters.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/fs_test_support.h"
#include "tensors/fuse_test_support.h"

namespace mb {
namespace {

// ---- Config parsing -------------------------------------------------------

TEST(PeftConfig, ScaleIsAlphaOverRankOrOverSqrtRank) {
  auto plain = parse_peft_config(R"({"peft_type":"LORA","r":2,"lora_alpha":4})", "cfg");
  ASSERT_TRUE(plain.ok()) << plain.error().to_string();
  EXPECT_EQ(plain->scale_for("model.layers.0.self_attn.q_proj"), 2.0f);
  auto rs = parse_peft_config(R"({"peft_type":"LORA","r":2,"lora_alpha":4,"use_rslora":true})", "cfg");
  ASSERT_TRUE(rs.ok());
  EXPECT_EQ(rs->scale_for("x"), static_cast<float>(4.0 / std::sqrt(2.0)));
}

TEST(PeftConfig, PatternsFirstMatchInFileOrderWins) {
  // "q_proj" comes first in the file, so it wins over the broader
  // "layers.0.*" for layer 0's q_proj even though a std::map would sort
  // "layers..." first.
  auto c = parse_peft_config(R"({"peft_type":"LORA","r":8,"lora_alpha":16,
      "rank_pattern":{"q_proj":4,"layers\\.0\\..*":2},
      "alpha_pattern":{"model.layers.1.mlp.down_proj":64}})",
                             "cfg");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_EQ(c->rank_for("model.layers.0.self_attn.q_proj"), 4);
  EXPECT_EQ(c->rank_for("model.layers.0.self_attn.k_proj"), 2);
  EXPECT_EQ(c->rank_for("model.layers.1.self_attn.k_proj"), 8);
  // Whole components only: "q_proj" must not match "xq_proj".
  EXPECT_EQ(c->rank_for("model.layers.3.attn.xq_proj"), 8);
  EXPECT_EQ(c->alpha_for("model.layers.1.mlp.down_proj"), 64);
  EXPECT_EQ(c->alpha_for("model.layers.11.mlp.down_proj"), 16);
  EXPECT_EQ(c->scale_for("model.layers.1.mlp.down_proj"), 8.0f);  // 64 / 8
}

TEST(PeftConfig, PatternRule) {
  EXPECT_TRUE(peft_pattern_matches("q_proj", "q_proj"));
  EXPECT_TRUE(peft_pattern_matches("q_proj", "a.b.q_proj"));
  EXPECT_FALSE(peft_pattern_matches("q_proj", "a.b.q_proj.x"));
  EXPECT_FALSE(peft_pattern_matches("proj", "a.q_proj"));
  EXPECT_TRUE(peft_pattern_matches(".*proj", "a.q_proj"));
  EXPECT_FALSE(peft_pattern_matches("(", "a"));
}

TEST(PeftConfig, RejectsVariantsThatChangeTheMath) {
  for (const char* bad :
       {R"({"peft_type":"LORA","use_qalora":true})", R"({"peft_type":"LORA","alora_invocation_tokens":[1,2]})",
        R"({"peft_type":"LORA","layer_replication":[[0,4]]})", R"({"peft_type":"LORA","lora_bias":true})",
        R"({"peft_type":"LORA","bias":"all"})", R"({"peft_type":"LOHA"})",
        R"({"peft_type":"LORA","use_dora":true,"fan_in_fan_out":true})"}) {
    auto c = parse_peft_config(bad, "dir/adapter_config.json");
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.error().code, Errc::kUnsupported) << bad;
    EXPECT_EQ(c.error().where, "dir/adapter_config.json");
  }
  // Defaults that PEFT writes for unused variants are fine.
  auto ok = parse_peft_config(
      R"({"peft_type":"LORA","use_qalora":false,"layer_replication":null,"loftq_config":{},"lora_bias":false,
          "bias":"none","megatron_config":null})",
      "cfg");
  EXPECT_TRUE(ok.ok()) << ok.error().to_string();
  EXPECT_FALSE(parse_peft_config("{", "cfg").ok());
  EXPECT_EQ(parse_peft_config(R"({"r":8})", "cfg").error().code, Errc::kInvalidInput);
  EXPECT_EQ(parse_peft_config(R"({"peft_type":"LORA","r":0})", "cfg").error().code, Errc::kInvalidInput);
}

TEST(PeftConfig, ResidualInitWarns) {
  auto c = parse_peft_config(R"({"peft_type":"LORA","init_lora_weights":"pissa_niter_4"})", "cfg");
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_NE(c->warnings[0].find("pissa"), std::string::npos);
}

TEST(MlxAdapterConfig, Fields) {
  auto c = parse_mlx_adapter_config(
      R"({"fine_tune_type":"dora","num_layers":4,"lora_parameters":{"rank":16,"scale":10.0,"dropout":0.0,
          "keys":["self_attn.q_proj"]}})",
      "cfg");
  ASSERT_TRUE(c.ok()) << c.error().to_string();
  EXPECT_TRUE(c->dora);
  EXPECT_EQ(c->rank, 16);
  EXPECT_EQ(c->scale, 10.0f);
  EXPECT_EQ(c->num_layers, 4);
  EXPECT_EQ(c->keys, std::vector<std::string>{"self_attn.q_proj"});

  auto full = parse_mlx_adapter_config(R"({"fine_tune_type":"full","lora_parameters":null})", "cfg");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, Errc::kUnsupported);
  EXPECT_NE(full.error().message.find("full"), std::string::npos);

  auto legacy = parse_mlx_adapter_config(R"({"use_dora":true,"lora_layers":2,"lora_parameters":{"rank":4}})", "c");
  ASSERT_TRUE(legacy.ok());
  EXPECT_TRUE(legacy->dora);
  EXPECT_EQ(legacy->num_layers, 2);
  EXPECT_EQ(legacy->scale, 20.0f);  // mlx-lm's default
  EXPECT_EQ(parse_mlx_adapter_config(R"({"fine_tune_type":"lora"})", "c").error().code, Errc::kInvalidInput);
}

// ---- Loading ---------------------------------------------------------------

using namespace fuse_test;  // NOLINT: test helpers

TEST(LoadAdapter, MlxAndPeftNormalizeToTheSameFactors) {
  MemoryFileSystem fs;
  const LoraModule m = make_module("model.layers.0.self_attn.q_proj", 6, 4, 2, 3.0f, 1);
  write_mlx_adapter(fs, "/mlx", {m});
  write_peft_adapter(fs, "/peft", {m});
  for (const char* dir : {"/mlx", "/peft"}) {
    auto a = load_adapter(fs, dir);
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    EXPECT_EQ(a->format, std::string(dir) == "/mlx" ? AdapterFormat::kMlx : AdapterFormat::kPeft);
    ASSERT_EQ(a->modules.size(), 1u);
    const LoraModule& got = a->modules[0];
    EXPECT_EQ(got.module, m.module);
    EXPECT_EQ(got.weight_name(), "model.layers.0.self_attn.q_proj.weight");
    EXPECT_EQ(got.out, 6);
    EXPECT_EQ(got.in, 4);
    EXPECT_EQ(got.rank, 2);
    EXPECT_EQ(got.scale, 3.0f);
    EXPECT_EQ(got.a, m.a);
    EXPECT_EQ(got.b, m.b);
    EXPECT_EQ(a->find("model.layers.0.self_attn.q_proj"), &got);
    EXPECT_EQ(a->find("model.layers.0.self_attn"), nullptr);
  }
}

TEST(LoadAdapter, HalfPrecisionFactorsConvertExactly) {
  MemoryFileSystem fs;
  LoraModule m = make_module("model.layers.1.mlp.up_proj", 8, 4, 2, 1.0f, 2);
  for (DType d : {DType::kF16, DType::kBF16}) {
    const fs::path dir = fs::path("/a") / dtype_name(d);
    write_peft_adapter(fs, dir, {m}, d);
    auto a = load_adapter(fs, dir);
    ASSERT_TRUE(a.ok()) << a.error().to_string();
    for (size_t i = 0; i < m.a.size(); ++i) EXPECT_EQ(a->modules[0].a[i], round_to_dtype(m.a[i], d));
  }
}

TEST(LoadAdapter, PeftRankPatternAlphaPatternAndRsLora) {
  MemoryFileSystem fs;
  const LoraModule q = make_module("model.layers.0.self_attn.q_proj", 4, 4, 4, 1.0f, 1);
  const LoraModule v = make_module("model.layers.0.self_attn.v_proj", 4, 4, 2, 1.0f, 2);
  write_peft_adapter(fs, "/p", {q, v}, DType::kF32,
                     {{"r", 4},
                      {"lora_alpha", 8},
                      {"use_rslora", true},
                      {"rank_pattern", {{"v_proj", 2}}},
                      {"alpha_pattern", {{"v_proj", 2}}}});
  auto a = load_adapter(fs, "/p");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  EXPECT_EQ(a->find(q.module)->scale, static_cast<float>(8 / std::sqrt(4.0)));
  EXPECT_EQ(a->find(v.module)->scale, static_cast<float>(2 / std::sqrt(2.0)));
  // Without the rank pattern the v_proj factors contradict the config.
  write_peft_adapter(fs, "/bad", {q, v}, DType::kF32, {{"r", 4}, {"lora_alpha", 8}});
  auto bad = load_adapter(fs, "/bad");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::kInvalidInput);
  EXPECT_NE(bad.error().message.find("lora_A.weight has rank 2 but adapter_config.json says 4"), std::string::npos)
      << bad.error().message;
}

TEST(LoadAdapter, EmbeddingsAndFanInFanOutAreTransposedAtLoad) {
  MemoryFileSystem fs;
  // PEFT embedding: lora_embedding_A [r, vocab], lora_embedding_B [dims, r];
  // delta = s (B A)ᵀ: [vocab, dims].
  const int64_t r = 2, vocab = 5, dims = 3;
  const std::vector<float> A = make_values(r * vocab, 1, 1), B = make_values(dims * r, 2, 1);
  std::string a_bytes = to_bytes(DType::kF32, A), b_bytes = to_bytes(DType::kF32, B);
  ASSERT_TRUE(fs.create_dirs("/emb").ok());
  ASSERT_TRUE(
      write_safetensors(
          fs, "/emb/adapter_model.safetensors",
          {{{"base_model.model.model.embed_tokens.lora_embedding_A", DType::kF32, {r, vocab}}, as_bytes(a_bytes)},
           {{"base_model.model.model.embed_tokens.lora_embedding_B", DType::kF32, {dims, r}}, as_bytes(b_bytes)}},
          {})
          .ok());
  ASSERT_TRUE(
      write_file_atomic(fs, "/emb/adapter_config.json", std::string(R"({"peft_type":"LORA","r":2,"lora_alpha":2})"))
          .ok());
  auto a = load_adapter(fs, "/emb");
  ASSERT_TRUE(a.ok()) << a.error().to_string();
  const LoraModule& m = a->modules[0];
  EXPECT_EQ(m.out, vocab);
  EXPECT_EQ(m.in, dims);
  for (int64_t v = 0; v < vocab; ++v)
    for (int64_t d = 0; d < dims; ++d) {
      double want = 0, got = 0;
      for (int64_t k = 0; k < r; ++k) {
        want += static_cast<double>(B[d * r + k]) * A[k * vocab + v];
        got += static_cast<double>(m.b[v * r + k]) * m.a[k * dims + d];
      }
      EXPECT_EQ(got, want);
    }

  // MLX embedding: lora_a [vocab, r], lora_b [r, dims], delta = s·a@b.
  ASSERT_TRUE(fs.create_dirs("/memb").ok());
  ASSERT_TRUE(write_safetensors(fs, "/memb/adapters.safetensors",
                                {{{"model.embed_tokens.lora_a", DType::kF32, {vocab, r}}, as_bytes(a_bytes)},
                                 {{"model.embed_tokens.lora_b", DType::kF32, {r, dims}}, as_bytes(b_bytes)}},
                                {})
                  .ok());
  ASSERT_TRUE(write_file_atomic(fs, "/memb/adapter_config.json",
                                std::string(R"({"fine_tune_type":"lora","lora_parameters":{"rank":2,"scale":1}})"))
                  .ok());
  auto mlx = load_adapter(fs, "/memb");
  ASSERT_TRUE(mlx.ok()) << mlx.error().to_string();
  EXPECT_EQ(mlx->modules[0].out, vocab);
  EXPECT_EQ(mlx->modules[0].in, dims);
  EXPECT_EQ(mlx->modules[0].b, A);  // lora_a [vocab, r] is already b
  EXPECT_EQ(mlx->modules[0].a, B);

  // fan_in_fan_out: the base stores [in, out]; the factors are swapped so
  // the module's [out, in] is the stored orientation.
  const LoraModule lin = make_module("transformer.h.0.attn.c_attn", 6, 4, 2, 1.0f, 3);
  write_peft_adapter(fs, "/fifo", {lin}, DType::kF32, {{"fan_in_fan_out", true}});
  auto fifo = load_adapter(fs, "/fifo");
  ASSERT_TRUE(fifo.ok()) << fifo.error().to_string();
  EXPECT_EQ(fifo->modules[0].out, 4);
  EXPECT_EQ(fifo->modules[0].in, 6);
  EXPECT_EQ(fifo->modules[0].b, transposed(lin.a, 2, 4));
}

TEST(LoadAdapter, BadAdaptersAreErrorsNamingTheTensorAndFile) {
  MemoryFileSystem fs;
  const LoraModule m = make_module("model.layers.0.self_attn.q_proj", 6, 4, 2, 1.0f, 1);

  // Rank differs between A and B.
  ASSERT_TRUE(fs.create_dirs("/rank").ok());
  const std::string a4 = to_bytes(DType::kF32, make_values(8, 1, 1)), b3 = to_bytes(DType::kF32, make_values(18, 2, 1));
  ASSERT_TRUE(
      write_safetensors(
          fs, "/rank/adapters.safetensors",
          {{{"m.lora_a", DType::kF32, {4, 2}}, as_bytes(a4)}, {{"m.lora_b", DType::kF32, {3, 6}}, as_bytes(b3)}}, {})
          .ok());
  ASSERT_TRUE(
      write_file_atomic(fs, "/rank/adapter_config.json", std::string(R"({"lora_parameters":{"rank":2,"scale":1}})"))
          .ok());
  auto r = load_adapter(fs, "/rank");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_EQ(r.error().where, "/rank/adapters.safetensors");
  EXPECT_NE(r.error().message.find("m.lora_a has rank 2 but m.lora_b has rank 3"), std::string::npos)
      << r.error().message;

  // A factor without its partner.
  ASSERT_TRUE(fs.create_dirs("/half").ok());
  ASSERT_TRUE(
      write_safetensors(fs, "/half/adapters.safetensors", {{{"m.lora_a", DType::kF32, {4, 2}}, as_bytes(a4)}}, {})
          .ok());
  ASSERT_TRUE(
      write_file_atomic(fs, "/half/adapter_config.json", std::string(R"({"lora_parameters":{"rank":2}})")).ok());
  r = load_adapter(fs, "/half");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_NE(r.error().message.find("module m"), std::string::npos);

  // Unsupported factor dtype.
  ASSERT_TRUE(fs.create_dirs("/int").ok());
  ASSERT_TRUE(
      write_safetensors(fs, "/int/adapters.safetensors", {{{"m.lora_a", DType::kI32, {4, 2}}, as_bytes(a4)}}, {}).ok());
  ASSERT_TRUE(write_file_atomic(fs, "/int/adapter_config.json", std::string(R"({"lora_parameters":{"rank":2}})")).ok());
  r = load_adapter(fs, "/int");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_NE(r.error().message.find("m.lora_a has dtype I32"), std::string::npos) << r.error().message;

  // A full fine-tuning tensor among the factors.
  write_mlx_adapter(fs, "/full", {m});
  const std::string w = to_bytes(DType::kF32, make_values(24, 3, 1));
  auto st = SafetensorsFile::open(fs, "/full/adapters.safetensors");
  ASSERT_TRUE(st.ok());
  std::vector<TensorData> data;
  for (const TensorInfo& info : st->tensors()) data.push_back({{info.name, info.dtype, info.shape}, st->data(info)});
  data.push_back({{"model.layers.0.mlp.up_proj.weight", DType::kF32, {6, 4}}, as_bytes(w)});
  ASSERT_TRUE(write_safetensors(fs, "/full/adapters2.safetensors", data, {}).ok());
  ASSERT_TRUE(fs.rename("/full/adapters2.safetensors", "/full/adapters.safetensors").ok());
  r = load_adapter(fs, "/full");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  EXPECT_NE(r.error().message.find("model.layers.0.mlp.up_proj.weight"), std::string::npos);

  // Truncated safetensors: the reader's kCorrupt names the file.
  write_peft_adapter(fs, "/trunc", {m});
  const std::string full = *fs.contents("/trunc/adapter_model.safetensors");
  fs.add_file("/trunc/adapter_model.safetensors", full.substr(0, full.size() - 3));
  r = load_adapter(fs, "/trunc");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_NE(r.error().to_string().find("/trunc/adapter_model.safetensors"), std::string::npos);

  // DoRA configured but no magnitude; a missing config; nothing at all.
  write_peft_adapter(fs, "/dora", {m}, DType::kF32, {{"use_dora", true}});
  EXPECT_EQ(load_adapter(fs, "/dora").error().code, Errc::kCorrupt);
  ASSERT_TRUE(fs.remove("/dora/adapter_config.json").ok());
  EXPECT_EQ(load_adapter(fs, "/dora").error().code, Errc::kInvalidInput);
  ASSERT_TRUE(fs.create_dirs("/empty").ok());
  EXPECT_EQ(load_adapter(fs, "/empty").error().code, Errc::kNotFound);
  fs.add_file("/bin/adapter_model.bin", "x");
  EXPECT_EQ(load_adapter(fs, "/bin").error().code, Errc::kUnsupported);
}

TEST(ValidateAdapter, AgainstBaseShapes) {
  MemoryFileSystem fs;
  write_mlx_adapter(fs, "/a", {make_module("model.layers.0.self_attn.q_proj", 6, 4, 2, 1.0f, 1)});
  auto a = load_adapter(fs, "/a");
  ASSERT_TRUE(a.ok());
  auto lookup = [](std::pair<int64_t, int64_t> shape) -> BaseShapeLookup {
    return [shape](const std::string& name) -> std::optional<std::pair<int64_t, int64_t>> {
      if (name == "model.layers.0.self_attn.q_proj.weight") return shape;
      return std::nullopt;
    };
  };
  EXPECT_TRUE(validate_adapter(*a, lookup({6, 4}), "base").ok());
  Status st = validate_adapter(*a, lookup({6, 8}), "base");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().where, "/a/adapters.safetensors");
  EXPECT_NE(st.error().message.find("[6, 4] weight but the base's model.layers.0.self_attn.q_proj.weight is [6, 8]"),
            std::string::npos)
      << st.error().message;
  st = validate_adapter(
      *a, [](const std::string&) { return std::nullopt; }, "/models/base");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("does not exist in the base model /models/base"), std::string::npos);
}

}  // namespace
}  // namespace mb
