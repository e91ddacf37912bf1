#include "tensors/model_weights.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/fs_test_support.h"
#include "tensors/safetensors_writer.h"

namespace mb {
namespace {

// A file with U8 tensors whose bytes are their names.
std::string shard_of(std::vector<std::string> names) {
  std::vector<TensorData> t;
  for (const std::string& n : names)
    t.push_back({{n, DType::kU8, {static_cast<int64_t>(n.size())}}, as_bytes(std::string_view(n))});
  // The views above point into `names`, which outlives the call.
  auto file = serialize_safetensors(t, {{"format", "mlx"}});
  EXPECT_TRUE(file.ok());
  return *file;
}

std::string index_of(const std::map<std::string, std::string>& weight_map) {
  nlohmann::json j;
  j["metadata"]["total_size"] = 0;
  j["weight_map"] = weight_map;
  return j.dump(4);
}

void expect_error(const Result<ModelWeights>& r, Errc code, std::string_view needle) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, code);
  EXPECT_NE(r.error().to_string().find(needle), std::string::npos) << r.error().to_string();
}

TEST(ModelWeights, SingleFile) {
  MemoryFileSystem fs;
  fs.add_file("/m/model.safetensors", shard_of({"b", "a"}));
  fs.add_file("/m/other.safetensors", shard_of({"ignored"}));
  auto w = ModelWeights::open(fs, "/m");
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  ASSERT_EQ(w->size(), 2u);
  EXPECT_EQ(w->tensors()[0].info->name, "a");
  EXPECT_EQ(as_chars(w->find("b").bytes), "b");
  EXPECT_FALSE(w->find("ignored"));
  EXPECT_EQ(w->shard_of("a"), 0);
  EXPECT_EQ(w->shard_of("zz"), -1);
}

TEST(ModelWeights, GlobsModelShardsWithoutIndex) {
  MemoryFileSystem fs;
  fs.add_file("/m/model-00001-of-00002.safetensors", shard_of({"x.weight"}));
  fs.add_file("/m/model-00002-of-00002.safetensors", shard_of({"a.weight", "z"}));
  fs.add_file("/m/adapters.safetensors", shard_of({"x.weight"}));  // not model*
  auto w = ModelWeights::open(fs, "/m");
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  ASSERT_EQ(w->size(), 3u);
  EXPECT_EQ(w->shard_of("x.weight"), 0);
  EXPECT_EQ(w->shard_of("z"), 1);
  EXPECT_EQ(as_chars(w->find("a.weight").bytes), "a.weight");
}

TEST(ModelWeights, DuplicateAcrossShardsIsCorrupt) {
  MemoryFileSystem fs;
  fs.add_file("/m/model-00001-of-00002.safetensors", shard_of({"x", "y"}));
  fs.add_file("/m/model-00002-of-00002.safetensors", shard_of({"y"}));
  expect_error(ModelWeights::open(fs, "/m"), Errc::kCorrupt, "tensor 'y' also appears in");
}

TEST(ModelWeights, IndexedShards) {
  MemoryFileSystem fs;
  fs.add_file("/m/model-00001-of-00002.safetensors", shard_of({"a", "b"}));
  fs.add_file("/m/model-00002-of-00002.safetensors", shard_of({"c"}));
  fs.add_file("/m/model-stale.safetensors", shard_of({"a"}));  // not in the index: ignored
  fs.add_file("/m/model.safetensors.index.json", index_of({{"a", "model-00001-of-00002.safetensors"},
                                                           {"b", "model-00001-of-00002.safetensors"},
                                                           {"c", "model-00002-of-00002.safetensors"}}));
  auto w = ModelWeights::open(fs, "/m");
  ASSERT_TRUE(w.ok()) << w.error().to_string();
  EXPECT_EQ(w->size(), 3u);
  EXPECT_EQ(w->shard_of("c"), 1);
  EXPECT_EQ(w->shards().size(), 2u);
}

TEST(ModelWeights, IndexMustAgreeWithShards) {
  MemoryFileSystem fs;
  fs.add_file("/m/model-00001-of-00002.safetensors", shard_of({"a", "b"}));
  fs.add_file("/m/model-00002-of-00002.safetensors", shard_of({"c"}));
  auto with_index = [&](const std::map<std::string, std::string>& map) {
    fs.add_file("/m/model.safetensors.index.json", index_of(map));
    return ModelWeights::open(fs, "/m");
  };
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  expect_error(with_index({{"a", s1}, {"b", s1}, {"c", s1}}), Errc::kCorrupt,
               "tensor 'c' is mapped to model-00001-of-00002.safetensors but that shard does not contain it");
  expect_error(with_index({{"a", s1}, {"c", s2}}), Errc::kCorrupt,
               "tensor 'b' in shard model-00001-of-00002.safetensors is missing from the weight_map");
  expect_error(with_index({{"a", s1}, {"b", s1}, {"c", "../model-00002-of-00002.safetensors"}}), Errc::kCorrupt,
               "does not name a file");
  expect_error(with_index({{"a", s1}, {"b", s1}, {"c", "model-00003.safetensors"}}), Errc::kNotFound, "");
  fs.add_file("/m/model.safetensors.index.json", "{\"weight_map\": 3}");
  expect_error(ModelWeights::open(fs, "/m"), Errc::kCorrupt, "weight_map");
  fs.add_file("/m/model.safetensors.index.json", "not json");
  expect_error(ModelWeights::open(fs, "/m"), Errc::kCorrupt, "not a JSON object");
}

TEST(ModelWeights, CorruptShardNamesTheFile) {
  MemoryFileSystem fs;
  std::string good = shard_of({"a"});
  fs.add_file("/m/model.safetensors", good.substr(0, good.size() - 1));
  expect_error(ModelWeights::open(fs, "/m"), Errc::kCorrupt, "/m/model.safetensors");
}

TEST(ModelWeights, EmptyDirectoryIsNotFound) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/m").ok());
  fs.add_file("/m/config.json", "{}");
  expect_error(ModelWeights::open(fs, "/m"), Errc::kNotFound, "no model.safetensors.index.json");
  expect_error(ModelWeights::open(fs, "/nowhere"), Errc::kNotFound, "");
}

TEST(ModelWeights, OpenFiles) {
  MemoryFileSystem fs;
  fs.add_file("/a/adapters.safetensors", shard_of({"l.lora_a", "l.lora_b"}));
  auto w = ModelWeights::open_files(fs, {"/a/adapters.safetensors"});
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->contains("l.lora_b"));
}

}  // namespace
}  // namespace mb
