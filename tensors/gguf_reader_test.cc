#include "tensors/gguf_reader.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tensors/gguf_layout.h"
#include "tensors/safetensors.h"

namespace mb {
namespace {

template <typename T>
void put(std::string& out, T v) {
  char raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof(T));
  out.append(raw, sizeof(T));
}

// A valid file: one string key, alignment, a 4-value F32 tensor and a
// 2x32 Q8_0 tensor.
std::string valid_file() {
  GgufLayout layout;
  layout.add_string("general.architecture", "qwen2");
  layout.add_u32("general.alignment", 32);
  layout.add_i32s("tokenizer.ggml.token_type", {1, 3, 4});
  layout.add_strings("tokenizer.ggml.tokens", {"a", "b", "c"});
  layout.add_tensor({"output_norm.weight", {4}, 0, 16});
  layout.add_tensor({"blk.0.attn_q.weight", {32, 2}, 8, 68});
  std::string file = layout.header();
  std::string a(16, '\1');
  std::string b(68, '\2');
  file += a + std::string(16, '\0') + b + std::string(28, '\0');
  return file;
}

Result<GgufFile> parse(std::string bytes) { return GgufFile::from_mapping(make_memory_mapping(bytes), "x.gguf"); }

std::string error_of(std::string bytes) {
  Result<GgufFile> f = parse(std::move(bytes));
  if (f) return "";
  EXPECT_EQ(f.error().code, Errc::kCorrupt);
  EXPECT_EQ(f.error().where, "x.gguf");
  return f.error().message;
}

TEST(GgufReader, ReadsValidFile) {
  Result<GgufFile> f = parse(valid_file());
  ASSERT_TRUE(f) << f.error().to_string();
  EXPECT_EQ(f.value().version(), 3u);
  EXPECT_EQ(f.value().metadata()["general.architecture"], "qwen2");
  EXPECT_EQ(f.value().metadata()["tokenizer.ggml.tokens"].dump(), R"(["a","b","c"])");
  EXPECT_EQ(f.value().metadata().begin().key(), "general.architecture");
  EXPECT_EQ(f.value().metadata_type("tokenizer.ggml.token_type"), 9);
  EXPECT_EQ(f.value().metadata_type("general.alignment"), 4);
  ASSERT_EQ(f.value().tensors().size(), 2u);
  const GgufTensorInfo* q = f.value().find("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, GgmlType::kQ8_0);
  EXPECT_EQ(q->dims, (std::vector<uint64_t>{32, 2}));
  EXPECT_EQ(q->byte_size, 68u);
  EXPECT_EQ(q->offset, f.value().data_offset() + 32);
  EXPECT_EQ(f.value().bytes(*q)[0], 2);
  EXPECT_EQ(f.value().bytes(*f.value().find("output_norm.weight")).size(), 16u);
  EXPECT_EQ(f.value().find("nope"), nullptr);
}

// Every prefix of a valid file is rejected (no crash, a clear error).
TEST(GgufReader, RejectsEveryTruncation) {
  std::string file = valid_file();
  for (size_t n = 0; n + 28 < file.size(); ++n) EXPECT_NE(error_of(file.substr(0, n)), "") << "length " << n;
}

TEST(GgufReader, RejectsBadMagicAndVersion) {
  std::string file = valid_file();
  file[0] = 'X';
  EXPECT_NE(error_of(file).find("magic"), std::string::npos);
  file = valid_file();
  file[4] = 2;
  EXPECT_NE(error_of(file).find("version 2"), std::string::npos);
}

TEST(GgufReader, RejectsHugeCounts) {
  std::string file = valid_file();
  uint64_t huge = uint64_t{1} << 60;
  std::memcpy(&file[16], &huge, 8);
  EXPECT_NE(error_of(file).find("metadata count"), std::string::npos);
  file = valid_file();
  std::memcpy(&file[8], &huge, 8);
  EXPECT_NE(error_of(file).find("tensor count"), std::string::npos);
}

// A hand-built header with a single key whose value bytes are `value`.
std::string one_key(const std::string& key, uint32_t type, const std::string& value) {
  std::string f = "GGUF";
  put<uint32_t>(f, 3);
  put<uint64_t>(f, 0);
  put<uint64_t>(f, 1);
  put<uint64_t>(f, key.size());
  f += key;
  put<uint32_t>(f, type);
  f += value;
  f.resize(f.size() + 64, '\0');
  return f;
}

TEST(GgufReader, RejectsHostileValues) {
  std::string len;
  put<uint64_t>(len, uint64_t{1} << 62);
  EXPECT_NE(error_of(one_key("k", 8, len)).find("key k: string length"), std::string::npos);
  EXPECT_NE(error_of(one_key("k", 13, "")).find("key k: unknown value type 13"), std::string::npos);
  EXPECT_NE(error_of(one_key("k", 7, "\x02")).find("neither 0 nor 1"), std::string::npos);
  std::string arr;
  put<uint32_t>(arr, 4);
  put<uint64_t>(arr, uint64_t{1} << 61);
  EXPECT_NE(error_of(one_key("k", 9, arr)).find("key k: array of"), std::string::npos);
  std::string nested;
  put<uint32_t>(nested, 9);
  put<uint64_t>(nested, 1);
  EXPECT_NE(error_of(one_key("k", 9, nested)).find("nested"), std::string::npos);
  std::string bad_utf8;
  put<uint64_t>(bad_utf8, 2);
  bad_utf8 += "\xff\xfe";
  EXPECT_NE(error_of(one_key("k", 8, bad_utf8)).find("UTF-8"), std::string::npos);
  std::string align;
  put<uint32_t>(align, 24);
  EXPECT_NE(error_of(one_key("general.alignment", 4, align)).find("power of two"), std::string::npos);
  EXPECT_NE(error_of(one_key("general.alignment", 5, align)).find("UINT32"), std::string::npos);
  EXPECT_NE(error_of(one_key("", 4, align)).find("empty key"), std::string::npos);
}

TEST(GgufReader, RejectsDuplicateKeysAndTensors) {
  GgufLayout layout;
  layout.add_u32("a", 1);
  layout.add_u32("a", 2);
  EXPECT_NE(error_of(layout.header()).find("key a: duplicate"), std::string::npos);
  GgufLayout t;
  t.add_tensor({"w", {4}, 0, 16});
  t.add_tensor({"w", {4}, 0, 16});
  EXPECT_NE(error_of(t.header() + std::string(64, '\0')).find("tensor w: duplicate"), std::string::npos);
}

std::string one_tensor(GgufTensorRecord r, uint64_t offset_shift, size_t data_bytes) {
  GgufLayout layout;
  layout.add_tensor({"w", {4}, 0, 16});
  layout.add_tensor(std::move(r));
  std::string h = layout.header();
  if (offset_shift != 0) {
    // The second record's offset is the header's last 8 bytes before padding.
    size_t at = h.rfind(std::string("\x20\0\0\0\0\0\0\0", 8));
    uint64_t off = 32 + offset_shift;
    std::memcpy(&h[at], &off, 8);
  }
  return h + std::string(data_bytes, '\0');
}

TEST(GgufReader, RejectsBadTensorRecords) {
  EXPECT_EQ(error_of(one_tensor({"t", {32, 2}, 8, 68}, 0, 128)), "");
  EXPECT_NE(error_of(one_tensor({"t", {32, 2}, 99, 68}, 0, 128)).find("tensor t: unknown ggml type 99"),
            std::string::npos);
  EXPECT_NE(error_of(one_tensor({"t", {33, 2}, 8, 68}, 0, 128)).find("tensor t: row length 33"), std::string::npos);
  EXPECT_NE(error_of(one_tensor({"t", {32, 2}, 8, 68}, 0, 64)).find("tensor t: data"), std::string::npos);
  EXPECT_NE(error_of(one_tensor({"t", {32, 2}, 8, 68}, 16, 256)).find("tensor t: offset 48"), std::string::npos);
  EXPECT_NE(error_of(one_tensor({"t", {1, 1, 1, 1, 1}, 0, 4}, 0, 128)).find("5 dimensions"), std::string::npos);
  EXPECT_NE(error_of(one_tensor({"t", {4, 0}, 0, 0}, 0, 128)).find("zero or overflows"), std::string::npos);
  uint64_t big = uint64_t{1} << 40;
  EXPECT_NE(error_of(one_tensor({"t", {big, big}, 0, 0}, 0, 128)).find("overflows"), std::string::npos);
  EXPECT_NE(error_of(one_tensor({"t", {big}, 0, 0}, 0, 128)).find("cannot fit"), std::string::npos);
  EXPECT_NE(error_of(one_tensor({std::string(64, 'n'), {4}, 0, 16}, 0, 128)).find("name of 64 bytes"),
            std::string::npos);
}

TEST(GgufReader, OpenNamesMissingFile) {
  Result<GgufFile> f = GgufFile::open("/nonexistent/dir/m.gguf");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().to_string().find("m.gguf"), std::string::npos);
}

}  // namespace
}  // namespace mb
