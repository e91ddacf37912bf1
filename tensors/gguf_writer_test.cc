#include "tensors/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/temp_dir.h"
#include "tensors/gguf_reader.h"

namespace mb {
namespace {

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + 0.1f);
  return v;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

GgufMetadata sample_metadata() {
  GgufMetadata m;
  m.add_string("general.architecture", "qwen2");
  m.add_u32("qwen2.block_count", 2);
  m.add_i32("some.i32", -7);
  m.add_f32("qwen2.rope.freq_base", 1000000.0f);
  m.add_bool("tokenizer.ggml.add_bos_token", false);
  m.add_strings("tokenizer.ggml.tokens", {"a",
                                          "\xc4\xa0"
                                          "b",
                                          "<|im_end|>"});
  m.add_i32s("tokenizer.ggml.token_type", {1, 1, 3});
  m.add_f32s("some.f32s", {0.5f, -2.0f});
  return m;
}

std::vector<GgufTensorDecl> sample_tensors() {
  return {{"token_embd.weight", {64, 3}, GgmlType::kQ8_0},
          {"output_norm.weight", {64}, GgmlType::kF32},
          {"blk.0.attn_q.weight", {256, 4}, GgmlType::kQ4_K},
          {"blk.0.attn_k.weight", {256, 2}, GgmlType::kQ6_K},
          {"blk.0.attn_v.weight", {32, 5}, GgmlType::kF16}};
}

// Writes the sample file, tensors in reverse order from several threads.
fs::path write_sample(const fs::path& dir, const std::string& name) {
  fs::path path = dir / name;
  Result<std::unique_ptr<GgufWriter>> w = GgufWriter::create(path, sample_metadata(), sample_tensors());
  EXPECT_TRUE(w) << w.error().to_string();
  std::vector<std::thread> threads;
  std::vector<GgufTensorDecl> decls = sample_tensors();
  for (size_t i = decls.size(); i-- > 0;) {
    threads.emplace_back([&, i] {
      size_t n = 1;
      for (uint64_t d : decls[i].dims) n *= d;
      EXPECT_TRUE(w.value()->write_tensor(decls[i].name, ramp(n, 0.1f * (i + 1))));
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(fs::exists(path)) << "nothing at the path before finish()";
  EXPECT_TRUE(w.value()->finish());
  EXPECT_EQ(fs::file_size(path), w.value()->file_size());
  return path;
}

TEST(GgufWriter, RoundTripsThroughReader) {
  TempDir dir;
  fs::path path = write_sample(dir.path(), "m.gguf");
  Result<GgufFile> f = GgufFile::open(path);
  ASSERT_TRUE(f) << f.error().to_string();
  const nlohmann::ordered_json& md = f.value().metadata();
  EXPECT_EQ(md["general.architecture"], "qwen2");
  EXPECT_EQ(md["qwen2.block_count"], 2);
  EXPECT_EQ(md["some.i32"], -7);
  EXPECT_EQ(md["qwen2.rope.freq_base"].get<double>(), 1000000.0);
  EXPECT_EQ(md["tokenizer.ggml.add_bos_token"], false);
  EXPECT_EQ(md["tokenizer.ggml.tokens"][1],
            "\xc4\xa0"
            "b");
  EXPECT_EQ(md["tokenizer.ggml.token_type"].dump(), "[1,1,3]");
  EXPECT_EQ(md["some.f32s"].dump(), "[0.5,-2.0]");
  EXPECT_EQ(md["general.alignment"], 32);
  EXPECT_EQ(f.value().metadata_type("some.i32"), 5);
  std::vector<GgufTensorDecl> decls = sample_tensors();
  ASSERT_EQ(f.value().tensors().size(), decls.size());
  for (size_t i = 0; i < decls.size(); ++i) {
    const GgufTensorInfo& t = f.value().tensors()[i];
    EXPECT_EQ(t.name, decls[i].name);
    EXPECT_EQ(t.dims, decls[i].dims);
    EXPECT_EQ(t.type, decls[i].type);
    EXPECT_EQ(t.offset % 32, 0u);
    std::vector<float> src = ramp(t.numel(), 0.1f * (i + 1));
    std::vector<uint8_t> expect = quantize_rows(t.type, src.data(), t.rows(), t.row_length());
    std::span<const uint8_t> got = f.value().bytes(t);
    ASSERT_EQ(got.size(), expect.size()) << t.name;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), expect.begin())) << t.name;
    std::vector<float> back(t.numel());
    dequantize_rows(t.type, got.data(), t.rows(), t.row_length(), back.data());
    for (size_t k = 0; k < back.size(); ++k) ASSERT_NEAR(back[k], src[k], 0.1f * (i + 1) * 0.15f) << t.name;
  }
}

TEST(GgufWriter, BytesAreDeterministic) {
  TempDir dir;
  EXPECT_EQ(slurp(write_sample(dir.path(), "a.gguf")), slurp(write_sample(dir.path(), "b.gguf")));
}

TEST(GgufWriter, RejectsBadDeclarations) {
  TempDir dir;
  fs::path p = dir.path() / "m.gguf";
  auto err = [&](std::vector<GgufTensorDecl> t, GgufMetadata m = {}) {
    Result<std::unique_ptr<GgufWriter>> w = GgufWriter::create(p, m, std::move(t));
    EXPECT_FALSE(w);
    return w ? std::string() : w.error().message;
  };
  EXPECT_NE(err({{"a", {33}, GgmlType::kQ8_0}}).find("tensor a: row length 33"), std::string::npos);
  EXPECT_NE(err({{"a", {32}, GgmlType::kF32}, {"a", {32}, GgmlType::kF32}}).find("duplicate"), std::string::npos);
  EXPECT_NE(err({{std::string(64, 'x'), {32}, GgmlType::kF32}}).find("name of 64"), std::string::npos);
  EXPECT_NE(err({{"a", {}, GgmlType::kF32}}).find("0 dimensions"), std::string::npos);
  GgufMetadata bad;
  bad.add_u32("general.alignment", 64);
  EXPECT_NE(err({}, bad).find("general.alignment"), std::string::npos);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(GgufWriter, RejectsBadWritesAndLeavesNothingBehind) {
  TempDir dir;
  fs::path p = dir.path() / "m.gguf";
  {
    Result<std::unique_ptr<GgufWriter>> w =
        GgufWriter::create(p, sample_metadata(), {{"a", {32, 2}, GgmlType::kQ8_0}, {"b", {4}, GgmlType::kF32}});
    ASSERT_TRUE(w);
    Status s = w.value()->write_tensor("nope", ramp(4, 1));
    EXPECT_EQ(s.error().code, Errc::kInvalidInput);
    EXPECT_NE(s.error().message.find("tensor nope"), std::string::npos);
    EXPECT_NE(w.value()->write_tensor("a", ramp(63, 1)).error().message.find("63 values"), std::string::npos);
    EXPECT_TRUE(w.value()->write_tensor("a", ramp(64, 1)));
    EXPECT_NE(w.value()->write_tensor("a", ramp(64, 1)).error().message.find("twice"), std::string::npos);
    EXPECT_NE(w.value()->write_raw("b", std::vector<uint8_t>(15)).error().message.find("15 bytes"), std::string::npos);
    Status f = w.value()->finish();
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("tensor b: never written"), std::string::npos);
  }
  EXPECT_TRUE(fs::is_empty(dir.path())) << "the temp file is removed";
}

TEST(GgufWriter, WriteRawAndEmptyFile) {
  TempDir dir;
  fs::path p = dir.path() / "raw.gguf";
  Result<std::unique_ptr<GgufWriter>> w = GgufWriter::create(p, {}, {{"b", {3}, GgmlType::kF32}});
  ASSERT_TRUE(w);
  std::vector<uint8_t> raw(12, 7);
  ASSERT_TRUE(w.value()->write_raw("b", raw));
  ASSERT_TRUE(w.value()->finish());
  Result<GgufFile> f = GgufFile::open(p);
  ASSERT_TRUE(f) << f.error().to_string();
  EXPECT_EQ(f.value().bytes(f.value().tensors()[0])[11], 7);
  EXPECT_EQ(f.value().file_size() % 32, 0u);
}

}  // namespace
}  // namespace mb
