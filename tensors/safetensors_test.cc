#include "tensors/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "base/fs_test_support.h"

namespace mb {
namespace {

// 8-byte little-endian length, header, data.
std::string file_of(std::string_view header, std::string_view data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  out += header;
  out += data;
  return out;
}

std::string f32_bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

Result<SafetensorsHeader> parse(const std::string& file) {
  return parse_safetensors_header(as_bytes(file), "x.safetensors");
}

// Expects a kCorrupt error whose message mentions `needle`.
void expect_corrupt(const std::string& file, std::string_view needle) {
  auto r = parse(file);
  ASSERT_FALSE(r.ok()) << "accepted: " << file.substr(std::min<size_t>(8, file.size()));
  EXPECT_EQ(r.error().code, Errc::kCorrupt);
  EXPECT_EQ(r.error().where, "x.safetensors");
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

constexpr std::string_view kMlxHeader =
    R"({"__metadata__":{"format":"mlx"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}})";
constexpr std::string_view kHfHeader =
    R"({"__metadata__":{"format":"mlx"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  )";

void expect_minimal_example(const SafetensorsHeader& h) {
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[0].dtype, DType::kF32);
  EXPECT_EQ(h.tensors[0].shape, std::vector<int64_t>{2});
  EXPECT_EQ(h.tensors[0].data_begin, 0u);
  EXPECT_EQ(h.tensors[0].data_end, 8u);
  EXPECT_TRUE(h.has_metadata);
  EXPECT_EQ(h.metadata, (std::map<std::string, std::string>{{"format", "mlx"}}));
}

// docs/formats/safetensors.md §5: both writers' versions of the minimal file load.
TEST(Safetensors, SpecMinimalExampleMlxWriter) {
  ASSERT_EQ(kMlxHeader.size(), 86u);
  auto r = parse(file_of(kMlxHeader, f32_bytes({1.0f, 2.0f})));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->header_size, 86u);
  expect_minimal_example(*r);
}

TEST(Safetensors, SpecMinimalExampleHfWriter) {
  ASSERT_EQ(kHfHeader.size(), 88u);
  auto r = parse(file_of(kHfHeader, f32_bytes({1.0f, 2.0f})));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->header_size, 88u);
  expect_minimal_example(*r);
}

TEST(Safetensors, OpenThroughFileSystemAndReadData) {
  MemoryFileSystem fs;
  fs.add_file("/m/a.safetensors", file_of(kMlxHeader, f32_bytes({1.0f, 2.0f})));
  auto f = SafetensorsFile::open(fs, "/m/a.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  EXPECT_EQ(f->where(), "/m/a.safetensors");
  TensorRef a = f->get("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(as_chars(a.bytes), f32_bytes({1.0f, 2.0f}));
  EXPECT_EQ(f->find("b"), nullptr);
  EXPECT_FALSE(f->get("b"));
  EXPECT_EQ(f->metadata().at("format"), "mlx");

  auto missing = SafetensorsFile::open(fs, "/m/none.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST(Safetensors, MlxStyleNullMetadataAndArbitraryDataOrder) {
  // Data for "b" comes first, as an unordered_map may lay it out.
  std::string header =
      R"({"__metadata__":null,"a":{"data_offsets":[4,12],"dtype":"F32","shape":[2]},"b":{"data_offsets":[0,4],"dtype":"BF16","shape":[1,2]}})";
  auto f = SafetensorsFile::from_mapping(make_memory_mapping(file_of(header, "BBBB" + f32_bytes({1, 2}))), "mem");
  ASSERT_TRUE(f.ok()) << f.error().to_string();
  EXPECT_FALSE(f->header().has_metadata);
  EXPECT_TRUE(f->metadata().empty());
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "a");  // sorted by name
  EXPECT_EQ(as_chars(f->data(*f->find("b"))), "BBBB");
  EXPECT_EQ(as_chars(f->data(*f->find("a"))), f32_bytes({1, 2}));
}

TEST(Safetensors, WhitespaceAroundTheObjectIsTolerated) {
  std::string header = "\t\n{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}\r \t\n";
  auto r = parse(file_of(header, "z"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_FALSE(r->has_metadata);
}

TEST(Safetensors, EmptyTensorsScalarsAndNoTensors) {
  std::string header =
      R"({"e":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]},"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"z":{"dtype":"I8","shape":[3,0],"data_offsets":[8,8]}})";
  auto r = parse(file_of(header, std::string(8, 'x')));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->tensors[1].numel(), 1u);
  EXPECT_EQ(r->tensors[0].numel(), 0u);
  EXPECT_TRUE(parse(file_of("{}", "")).ok());
  EXPECT_TRUE(parse(file_of(R"({"__metadata__":{}})", "")).ok());
}

TEST(Safetensors, SubByteAndF8DtypesParse) {
  auto r = parse(file_of(
      R"({"a":{"dtype":"F4","shape":[4],"data_offsets":[0,2]},"b":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[2,4]}})",
      "abcd"));
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->tensors[0].dtype, DType::kF4);
  EXPECT_EQ(r->tensors[1].dtype, DType::kF8E4M3);
  expect_corrupt(file_of(R"({"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", "ab"), "whole number of bytes");
}

TEST(Safetensors, RejectsShortFilesAndBadHeaderLengths) {
  for (size_t n = 0; n < 8; ++n) expect_corrupt(std::string(n, '\0'), "shorter than");
  std::string big(8, '\0');
  uint64_t n = 100'000'001;
  std::memcpy(big.data(), &n, 8);
  expect_corrupt(big + "{}", "exceeds the 100000000 byte limit");
  std::string f = file_of("{}", "");
  f[0] = 9;  // claims 9 header bytes, has 2
  expect_corrupt(f, "exceeds the 2 bytes");
}

TEST(Safetensors, RejectsNonUtf8NonJsonAndNonObjects) {
  expect_corrupt(file_of("{\"a\xff\":1}", ""), "UTF-8");
  expect_corrupt(file_of("{\"\xc0\xaf\":1}", ""), "UTF-8");            // overlong '/'
  expect_corrupt(file_of("{\"\xed\xa0\x80\":1}", ""), "UTF-8");        // surrogate
  expect_corrupt(file_of("\xef\xbb\xbf{}", ""), "not a JSON object");  // a BOM is not whitespace
  expect_corrupt(file_of("[]", ""), "not a JSON object");
  expect_corrupt(file_of("", ""), "not a JSON object");
  expect_corrupt(file_of("{\"a\":", ""), "not valid JSON");
  expect_corrupt(file_of("{} x", ""), "not valid JSON");
  expect_corrupt(file_of("{}{}", ""), "not valid JSON");
  std::string deep = "{\"__metadata__\":" + std::string(10000, '[') + std::string(10000, ']') + "}";
  expect_corrupt(file_of(deep, ""), "nested too deeply");
}

TEST(Safetensors, RejectsDuplicateKeysAtEveryLevel) {
  expect_corrupt(
      file_of(
          R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
          "z"),
      "duplicate key 'a'");
  expect_corrupt(file_of(R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "z"),
                 "duplicate key 'dtype'");
  expect_corrupt(file_of(R"({"__metadata__":{"k":"1","k":"2"}})", ""), "duplicate key 'k'");
  expect_corrupt(file_of(R"({"__metadata__":null,"__metadata__":null})", ""), "duplicate key '__metadata__'");
}

TEST(Safetensors, RejectsMalformedEntriesNamingTheTensor) {
  auto entry = [](std::string_view body, std::string_view data = "") {
    return file_of(fmt::format(R"({{"w.q":{}}})", body), data);
  };
  expect_corrupt(entry("[]"), "tensor 'w.q': entry is not a JSON object");
  expect_corrupt(entry(R"({"shape":[1],"data_offsets":[0,1]})", "z"), "tensor 'w.q': missing or non-string \"dtype\"");
  expect_corrupt(entry(R"({"dtype":5,"shape":[1],"data_offsets":[0,1]})", "z"), "tensor 'w.q'");
  expect_corrupt(entry(R"({"dtype":"F31","shape":[1],"data_offsets":[0,4]})", "zzzz"), "unknown dtype 'F31'");
  expect_corrupt(entry(R"({"dtype":"U8","shape":"1","data_offsets":[0,1]})", "z"), "non-array \"shape\"");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[-1],"data_offsets":[0,1]})", "z"), "non-negative");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[1.0],"data_offsets":[0,1]})", "z"), "non-negative");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[1]})", "z"), "data_offsets");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[1],"data_offsets":[0,1,2]})", "z"), "two integers");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[1],"data_offsets":[-1,0]})", "z"), "non-negative");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[1],"data_offsets":[1,0]})", "z"), "end before they begin");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[2],"data_offsets":[0,4]})", "zzzz"), "needs 8 bytes");
  expect_corrupt(entry(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]})", "zzzz"),
                 "element count overflows");
  expect_corrupt(entry(R"({"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]})", "zzzz"),
                 "byte size overflows");
  expect_corrupt(entry(R"({"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]})", "z"), "non-negative");
}

TEST(Safetensors, RejectsHolesOverlapsAndBadCoverage) {
  std::string two =
      R"({{"a":{{"dtype":"U8","shape":[2],"data_offsets":[{},{}]}},"b":{{"dtype":"U8","shape":[2],"data_offsets":[{},{}]}}}})";
  EXPECT_TRUE(parse(file_of(fmt::format(fmt::runtime(two), 0, 2, 2, 4), "abcd")).ok());
  expect_corrupt(file_of(fmt::format(fmt::runtime(two), 0, 2, 3, 5), "abcde"),
                 "tensor 'b': data starts at 3, leaving a hole");
  expect_corrupt(file_of(fmt::format(fmt::runtime(two), 0, 2, 1, 3), "abc"), "tensor 'b': data [1, 3) overlaps");
  expect_corrupt(file_of(fmt::format(fmt::runtime(two), 1, 3, 3, 5), "abcde"), "tensor 'a': data starts at 1");
  expect_corrupt(file_of(fmt::format(fmt::runtime(two), 0, 2, 2, 4), "abcdef"),
                 "cover 4 bytes but the data buffer holds 6");
  expect_corrupt(file_of(fmt::format(fmt::runtime(two), 0, 2, 2, 4), "abc"),
                 "tensor 'b': data [2, 4) lies past the end of the file");
  // A tensor moved past the end is named, not the one after the gap it leaves.
  expect_corrupt(file_of(fmt::format(fmt::runtime(two), 9, 11, 2, 4), "abcd"),
                 "tensor 'a': data [9, 11) lies past the end of the file");
  expect_corrupt(file_of("{}", "x"), "cover 0 bytes");
}

TEST(Safetensors, RejectsBadMetadata) {
  expect_corrupt(file_of(R"({"__metadata__":{"k":1}})", ""), "value for 'k' is not a string");
  expect_corrupt(file_of(R"({"__metadata__":{"k":null}})", ""), "not a string");
  expect_corrupt(file_of(R"({"__metadata__":["k"]})", ""), "must be null or an object");
  expect_corrupt(file_of(R"({"__metadata__":"k"})", ""), "must be null or an object");
}

// Every truncation and every single-byte corruption of a valid file either
// parses or fails cleanly: the parser must survive hostile input.
TEST(Safetensors, SurvivesTruncationAndByteFlips) {
  std::string header =
      R"({"__metadata__":{"format":"mlx"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[8,10]}})";
  std::string file = file_of(header, f32_bytes({1, 2}) + "zz");
  ASSERT_TRUE(parse(file).ok());
  for (size_t n = 0; n < file.size(); ++n) EXPECT_FALSE(parse(file.substr(0, n)).ok()) << n;
  for (size_t i = 0; i < file.size(); ++i) {
    for (unsigned char x : {0x01, 0x20, 0x80, 0xFF}) {
      std::string f = file;
      f[i] = static_cast<char>(static_cast<unsigned char>(f[i]) ^ x);
      auto r = parse(f);
      if (r.ok()) {
        // Whatever parsed must still describe a consistent buffer.
        uint64_t total = 0;
        for (const TensorInfo& t : r->tensors) total += t.nbytes();
        EXPECT_EQ(total, f.size() - r->data_offset());
      }
    }
  }
}

}  // namespace
}  // namespace mb
