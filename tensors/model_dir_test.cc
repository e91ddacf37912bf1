#include "tensors/model_dir.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>

#include "base/fs_test_support.h"
#include "base/temp_dir.h"

namespace mb {
namespace {

using ojson = nlohmann::ordered_json;

QuantizationConfig parse_quant(std::string_view config_text) {
  auto q = QuantizationConfig::from_config(ojson::parse(config_text), "config.json");
  EXPECT_TRUE(q.ok()) << q.error().to_string();
  return q.ok() ? *q : QuantizationConfig{};
}

TEST(QuantizationConfig, UniformUsesScalesPresence) {
  auto q = parse_quant(R"({"quantization":{"group_size":64,"bits":4,"mode":"affine"}})");
  ASSERT_TRUE(q.present());
  EXPECT_EQ(q.for_module("model.layers.0.self_attn.q_proj", true), (LayerQuant{4, 64, "affine"}));
  EXPECT_EQ(q.for_module("model.norm", false), std::nullopt);
  EXPECT_FALSE(parse_quant(R"({"model_type":"llama"})").present());
  EXPECT_EQ(parse_quant(R"({"model_type":"llama"})").for_module("x", true), std::nullopt);
}

TEST(QuantizationConfig, PerLayerEntriesWin) {
  auto q = parse_quant(R"({"quantization":{
      "group_size": 32, "bits": 3,
      "model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 6, "mode": "affine"},
      "model.layers.1.mlp.down_proj": {"group_size": null, "bits": 6},
      "model.layers.2.mlp.gate": {"bits": 8},
      "model.norm": false,
      "model.layers.0.self_attn.q_proj": true,
      "model.layers.3.mlp.up_proj": {}
  }})");
  // No top-level mode: affine.
  EXPECT_EQ(q.defaults(), (LayerQuant{3, 32, "affine"}));
  EXPECT_EQ(q.for_module("model.layers.0.mlp.down_proj", false), (LayerQuant{6, 64, "affine"}));
  // "group_size": null falls back to the mode default 64, not the top level.
  EXPECT_EQ(q.for_module("model.layers.1.mlp.down_proj", true), (LayerQuant{6, 64, "affine"}));
  EXPECT_EQ(q.for_module("model.layers.2.mlp.gate", true), (LayerQuant{8, 64, "affine"}));
  EXPECT_EQ(q.for_module("model.norm", true), std::nullopt);
  EXPECT_EQ(q.for_module("model.layers.0.self_attn.q_proj", false), (LayerQuant{3, 32, "affine"}));
  EXPECT_EQ(q.for_module("model.layers.3.mlp.up_proj", true), std::nullopt);  // {} is falsy
  EXPECT_EQ(q.for_module("model.layers.9.mlp.up_proj", true), (LayerQuant{3, 32, "affine"}));
}

TEST(QuantizationConfig, ModeDefaultsAndQuantizationConfigFallback) {
  auto q = parse_quant(R"({"quantization":{"group_size":null,"bits":null,"mode":"mxfp4"}})");
  EXPECT_EQ(q.defaults(), (LayerQuant{4, 32, "mxfp4"}));
  auto legacy = parse_quant(R"({"quantization_config":{"group_size":128,"bits":8}})");
  ASSERT_TRUE(legacy.present());
  EXPECT_EQ(legacy.defaults(), (LayerQuant{8, 128, "affine"}));
  auto r = QuantizationConfig::from_config(ojson::parse(R"({"quantization_config":{"quant_method":"awq","bits":4}})"),
                                           "c.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kUnsupported);
  r = QuantizationConfig::from_config(ojson::parse(R"({"quantization":[1]})"), "c.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  r = QuantizationConfig::from_config(ojson::parse(R"({"quantization":{"bits":4,"m.x":"yes"}})"), "c.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'m.x'"), std::string::npos);
  r = QuantizationConfig::from_config(ojson::parse(R"({"quantization":{"bits":"4"}})"), "c.json");
  EXPECT_FALSE(r.ok());
}

TEST(QuantizationConfig, ToJsonAndSetQuantization) {
  auto q = QuantizationConfig::uniform({4, 64, "affine"});
  q.set_override("model.layers.0.mlp.down_proj", LayerQuant{8, 64, "affine"});
  q.set_override("model.norm", std::nullopt);
  EXPECT_EQ(
      q.to_json().dump(),
      R"({"group_size":64,"bits":4,"mode":"affine","model.layers.0.mlp.down_proj":{"group_size":64,"bits":8,"mode":"affine"},"model.norm":false})");
  ojson config = ojson::parse(R"({"model_type":"llama"})");
  set_quantization(config, &q);
  EXPECT_EQ(config["quantization"], config["quantization_config"]);
  auto back = QuantizationConfig::from_config(config, "c");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->overrides(), q.overrides());
  set_quantization(config, nullptr);
  EXPECT_EQ(config.dump(), R"({"model_type":"llama"})");
}

TEST(ModelDir, ModuleOf) {
  EXPECT_EQ(module_of("model.layers.0.mlp.down_proj.weight"), "model.layers.0.mlp.down_proj");
  EXPECT_EQ(module_of("weight"), "weight");
}

// Byte-for-byte what Python's json.dump(dict(sorted(config.items())), indent=4)
// writes after save_config's edits (generated with CPython 3.11).
TEST(ModelDir, ConfigJsonMatchesMlxLmSaveConfig) {
  ojson config = ojson::parse(
      "{\"model_type\":\"llama\",\"_name_or_path\":\"x\",\"hidden_size\":64,\"rms_norm_eps\":1e-05,"
      "\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0},\"architectures\":[\"LlamaForCausalLM\"],"
      "\"name\":\"caf\\u00e9 \\ud83d\\ude00\",\"quantization\":{\"group_size\":64,\"bits\":4,\"mode\":\"affine\","
      "\"model.layers.0.mlp.down_proj\":{\"group_size\":64,\"bits\":8,\"mode\":\"affine\"}},\"vision_config\":{},"
      "\"tie_word_embeddings\":true,\"empty\":[],\"obj\":{},\"torch_dtype\":\"bfloat16\",\"big\":1e20,"
      "\"x\":100000.0,\"small\":0.1,\"neg\":-3,\"n\":null}");
  const char* expected = R"({
    "architectures": [
        "LlamaForCausalLM"
    ],
    "big": 1e+20,
    "empty": [],
    "hidden_size": 64,
    "model_type": "llama",
    "n": null,
    "name": "caf\u00e9 \ud83d\ude00",
    "neg": -3,
    "obj": {},
    "quantization": {
        "group_size": 64,
        "bits": 4,
        "mode": "affine",
        "model.layers.0.mlp.down_proj": {
            "group_size": 64,
            "bits": 8,
            "mode": "affine"
        }
    },
    "quantization_config": {
        "group_size": 64,
        "bits": 4,
        "mode": "affine",
        "model.layers.0.mlp.down_proj": {
            "group_size": 64,
            "bits": 8,
            "mode": "affine"
        }
    },
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "type": "linear",
        "factor": 2.0
    },
    "small": 0.1,
    "tie_word_embeddings": true,
    "torch_dtype": "bfloat16",
    "x": 100000.0
})";
  EXPECT_EQ(format_config_json(config), expected);
}

// A small quantized llama-like model: declared order, dtypes, shapes.
std::vector<TensorDecl> sample_model() {
  return {
      {"model.embed_tokens.weight", DType::kBF16, {32, 64}},
      {"model.layers.0.self_attn.q_proj.weight", DType::kU32, {64, 8}},
      {"model.layers.0.self_attn.q_proj.scales", DType::kBF16, {64, 1}},
      {"model.layers.0.self_attn.q_proj.biases", DType::kBF16, {64, 1}},
      {"model.layers.0.self_attn.q_proj.bias", DType::kBF16, {64}},
      {"model.layers.0.mlp.down_proj.weight", DType::kU32, {64, 16}},
      {"model.layers.0.mlp.down_proj.scales", DType::kBF16, {64, 1}},
      {"model.layers.0.mlp.down_proj.biases", DType::kBF16, {64, 1}},
      {"model.norm.weight", DType::kBF16, {64}},
      {"lm_head.weight", DType::kBF16, {32, 64}},
  };
}

const char* kSampleConfig = R"({"model_type":"llama","torch_dtype":"bfloat16","_name_or_path":"src",
  "quantization":{"group_size":64,"bits":4,"mode":"affine",
                  "model.layers.0.mlp.down_proj":{"group_size":64,"bits":8,"mode":"affine"}}})";

// Generated with Python's json.dump(index, indent=4) for the same plan.
const char* kSampleIndex = R"({
    "metadata": {
        "total_size": 15104,
        "total_parameters": 12416
    },
    "weight_map": {
        "lm_head.weight": "model-00003-of-00003.safetensors",
        "model.embed_tokens.weight": "model-00001-of-00003.safetensors",
        "model.layers.0.mlp.down_proj.biases": "model-00002-of-00003.safetensors",
        "model.layers.0.mlp.down_proj.scales": "model-00002-of-00003.safetensors",
        "model.layers.0.mlp.down_proj.weight": "model-00002-of-00003.safetensors",
        "model.layers.0.self_attn.q_proj.bias": "model-00001-of-00003.safetensors",
        "model.layers.0.self_attn.q_proj.biases": "model-00001-of-00003.safetensors",
        "model.layers.0.self_attn.q_proj.scales": "model-00001-of-00003.safetensors",
        "model.layers.0.self_attn.q_proj.weight": "model-00001-of-00003.safetensors",
        "model.norm.weight": "model-00002-of-00003.safetensors"
    }
})";

TEST(ModelDir, PlanShardsLikeMakeShards) {
  auto q = parse_quant(kSampleConfig);
  auto plan = plan_shards(sample_model(), 7000, q);
  ASSERT_TRUE(plan.ok()) << plan.error().to_string();
  ASSERT_EQ(plan->shards.size(), 3u);
  EXPECT_EQ(plan->shards[0].nbytes, 6528u);
  EXPECT_EQ(plan->shards[1].nbytes, 4480u);
  EXPECT_EQ(plan->shards[2].nbytes, 4096u);
  EXPECT_EQ(plan->shards[2].file_name, "model-00003-of-00003.safetensors");
  EXPECT_EQ(plan->total_size, 15104u);
  // embed 2048 + q_proj 512*32/4 + bias 64 + down_proj 1024*32/8 + norm 64 + lm_head 2048.
  EXPECT_EQ(plan->total_parameters, 12416u);
  EXPECT_EQ(format_index_json(*plan), kSampleIndex);

  auto one = plan_shards(sample_model(), kDefaultMaxShardBytes, q);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->shards.size(), 1u);
  EXPECT_EQ(one->shards[0].file_name, "model.safetensors");

  // A tensor bigger than the limit gets a shard of its own, never an empty one.
  auto big = plan_shards(sample_model(), 1000, q);
  ASSERT_TRUE(big.ok());
  for (const auto& s : big->shards) EXPECT_FALSE(s.tensors.empty());
  EXPECT_EQ(big->shards[0].tensors[0].name, "model.embed_tokens.weight");

  auto dup = sample_model();
  dup.push_back(dup[0]);
  EXPECT_FALSE(plan_shards(dup, 7000, q).ok());
  auto empty = plan_shards({}, 7000, q);
  ASSERT_TRUE(empty.ok());
  ASSERT_EQ(empty->shards.size(), 1u);
}

// Deterministic bytes for a tensor: its name repeated.
std::string bytes_for(const TensorDecl& t) {
  uint64_t n = static_cast<uint64_t>(dtype_size(t.dtype));
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  std::string out;
  while (out.size() < n) out += t.name;
  out.resize(n);
  return out;
}

void add_source_files(FileSystem& fs, const fs::path& src) {
  ASSERT_TRUE(fs.create_dirs(src).ok());
  for (auto [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"tokenizer.json", "{\"tok\":1}"},
           {"tokenizer_config.json", "{}"},
           {"special_tokens_map.json", "{}"},
           {"generation_config.json", "{\"eos_token_id\":[7,8]}"},
           {"chat_template.jinja", "{{ x }}"},
           {"tokenizer.model", "spm"},
           {"merges.txt", "a b"},
           {"modeling_x.py", "print()"},
           {"README.md", "card"},
           {"config.json", "{}"},
           {"model.safetensors", "junk"},
           {"model.safetensors.index.json", "{}"},
       })
    ASSERT_TRUE(write_file_atomic(fs, src / name, text).ok());
}

// Writes the sample model into `out` with 8 threads in shuffled order.
void write_sample(FileSystem& fs, const fs::path& src, const fs::path& out, unsigned seed) {
  ASSERT_TRUE(fs.create_dirs(out).ok());
  auto decls = sample_model();
  ModelDirOptions options;
  options.max_shard_bytes = 7000;
  options.source_dir = src;
  auto w = ModelDirWriter::create(fs, out, decls, ojson::parse(kSampleConfig), options);
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ((*w)->plan().shards.size(), 3u);
  std::shuffle(decls.begin(), decls.end(), std::mt19937(seed));
  std::atomic<size_t> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < decls.size();) {
        std::string b = bytes_for(decls[i]);
        if (!(*w)->write_tensor(decls[i].name, as_bytes(b)).ok()) ++failures;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE((*w)->finish().ok());
}

TEST(ModelDir, WritesThreeShardsAndReadsThemBack) {
  MemoryFileSystem fs;
  add_source_files(fs, "/src");
  write_sample(fs, "/src", "/out", 1);

  EXPECT_EQ(*fs.list_dir("/out"),
            (std::vector<std::string>{"chat_template.jinja", "config.json", "generation_config.json", "merges.txt",
                                      "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                                      "model-00003-of-00003.safetensors", "model.safetensors.index.json",
                                      "modeling_x.py", "special_tokens_map.json", "tokenizer.json", "tokenizer.model",
                                      "tokenizer_config.json"}));
  EXPECT_EQ(*fs.contents("/out/model.safetensors.index.json"), kSampleIndex);
  EXPECT_EQ(*fs.contents("/out/tokenizer.json"), "{\"tok\":1}");
  // Side files were linked or copied, never read into memory.
  for (const fs::path& p : fs.read_paths()) EXPECT_NE(p.parent_path(), fs::path("/src")) << p;

  auto md = ModelDir::open(fs, "/out");
  ASSERT_TRUE(md.ok()) << md.error().to_string();
  const ModelWeights& w = md->weights();
  ASSERT_EQ(w.size(), sample_model().size());
  ASSERT_EQ(w.shards().size(), 3u);
  for (const TensorDecl& t : sample_model()) {
    TensorRef r = w.find(t.name);
    ASSERT_TRUE(r) << t.name;
    EXPECT_EQ(r.info->dtype, t.dtype);
    EXPECT_EQ(r.info->shape, t.shape);
    EXPECT_EQ(as_chars(r.bytes), bytes_for(t)) << t.name;
  }
  for (const auto& shard : w.shards())
    EXPECT_EQ(shard->metadata(), (std::map<std::string, std::string>{{"format", "mlx"}}));
  EXPECT_EQ(w.shard_of("lm_head.weight"), 2);

  // config.json: sorted, _name_or_path dropped, quantization mirrored, and
  // (on reading, as mlx_lm does) eos_token_id taken from generation_config.
  std::string config = *fs.contents("/out/config.json");
  EXPECT_EQ(config.find("_name_or_path"), std::string::npos);
  EXPECT_LT(config.find("\"model_type\""), config.find("\"quantization\""));
  EXPECT_EQ(md->config()["quantization"], md->config()["quantization_config"]);
  EXPECT_EQ(md->config()["eos_token_id"], ojson::parse("[7,8]"));
  EXPECT_EQ(md->module_quant("model.layers.0.mlp.down_proj"), (LayerQuant{8, 64, "affine"}));
  EXPECT_EQ(md->module_quant("model.layers.0.self_attn.q_proj"), (LayerQuant{4, 64, "affine"}));
  EXPECT_EQ(md->module_quant("model.norm"), std::nullopt);
  EXPECT_EQ(md->module_quant("lm_head"), std::nullopt);
}

TEST(ModelDir, OutputIsDeterministic) {
  MemoryFileSystem fs;
  add_source_files(fs, "/src");
  write_sample(fs, "/src", "/a", 1);
  write_sample(fs, "/src", "/b", 99);
  auto names = fs.list_dir("/a");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, *fs.list_dir("/b"));
  for (const std::string& n : *names) EXPECT_EQ(*fs.contents("/a/" + n), *fs.contents("/b/" + n)) << n;
}

TEST(ModelDir, WriterRejectsUnknownAndIncompleteTensors) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/out").ok());
  auto w = ModelDirWriter::create(fs, "/out", sample_model(), ojson::parse(kSampleConfig), {7000, std::nullopt});
  ASSERT_TRUE(w.ok());
  Status st = (*w)->write_tensor("nope", {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().where, "nope");
  st = (*w)->finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kInvalidInput);
  w->reset();
  EXPECT_TRUE(fs.list_dir("/out")->empty());
}

TEST(ModelDir, OpenReadsGenerationConfigLikeLoadConfig) {
  MemoryFileSystem fs;
  auto shard = serialize_safetensors({}, {});
  ASSERT_TRUE(shard.ok());
  fs.add_file("/m/model.safetensors", *shard);
  fs.add_file("/m/config.json", R"({"eos_token_id": 2})");
  fs.add_file("/m/generation_config.json", R"({"eos_token_id": 0})");  // falsy: ignored
  auto md = ModelDir::open(fs, "/m");
  ASSERT_TRUE(md.ok()) << md.error().to_string();
  EXPECT_EQ(md->config()["eos_token_id"], 2);
  EXPECT_FALSE(md->quantization().present());
  fs.add_file("/m/generation_config.json", "not json");
  ASSERT_TRUE(ModelDir::open(fs, "/m").ok());
  fs.add_file("/m/config.json", "[]");
  auto bad = ModelDir::open(fs, "/m");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().where, "/m/config.json");
  ASSERT_TRUE(fs.remove("/m/config.json").ok());
  EXPECT_EQ(ModelDir::open(fs, "/m").error().code, Errc::kNotFound);
}

TEST(ModelDir, SideFilesOnRealDiskAreLinked) {
  TempDir dir;
  auto fs = make_real_file_system();
  add_source_files(*fs, dir.path() / "src");
  std::filesystem::create_symlink(dir.path() / "src" / "merges.txt", dir.path() / "src" / "vocab.txt");
  ASSERT_TRUE(fs->create_dirs(dir.path() / "out").ok());
  ASSERT_TRUE(carry_over_side_files(*fs, dir.path() / "src", dir.path() / "out").ok());
  auto a = fs->stat(dir.path() / "out" / "tokenizer.json");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*fs->read_file(dir.path() / "out" / "tokenizer.json"), "{\"tok\":1}");
  // A symlinked source becomes a real file holding the target's bytes.
  auto v = fs->lstat(dir.path() / "out" / "vocab.txt");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->is_symlink);
  EXPECT_EQ(*fs->read_file(dir.path() / "out" / "vocab.txt"), "a b");
  EXPECT_FALSE(fs->stat(dir.path() / "out" / "README.md").ok());
  // Running again replaces what is there.
  ASSERT_TRUE(carry_over_side_files(*fs, dir.path() / "src", dir.path() / "out").ok());
}

}  // namespace
}  // namespace mb
