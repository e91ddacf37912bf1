#include "tensors/safetensors_writer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>

#include "base/fs_test_support.h"
#include "base/temp_dir.h"

namespace mb {
namespace {

std::string to_hex(std::string_view s) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::span<const std::byte> bytes_of(const std::string& s) { return as_bytes(s); }

struct Owned {
  TensorDecl decl;
  std::string bytes;
};

std::vector<TensorData> view(const std::vector<Owned>& owned) {
  std::vector<TensorData> out;
  for (const Owned& o : owned) out.push_back({o.decl, bytes_of(o.bytes)});
  return out;
}

// A deterministic little model: mixed dtypes, names out of order.
std::vector<Owned> sample_tensors() {
  std::vector<Owned> t = {
      {{"layers.1.w", DType::kBF16, {3, 4}}, {}}, {{"emb", DType::kF32, {2, 3}}, {}}, {{"ids", DType::kI64, {3}}, {}},
      {{"layers.0.w", DType::kBF16, {4, 4}}, {}}, {{"mask", DType::kBool, {5}}, {}},  {{"norm", DType::kF32, {4}}, {}},
      {{"empty", DType::kF16, {0}}, {}},
  };
  std::mt19937 rng(7);
  for (Owned& o : t) {
    size_t n = 1;
    for (int64_t d : o.decl.shape) n *= static_cast<size_t>(d);
    o.bytes.resize(n * dtype_size(o.decl.dtype));
    for (char& c : o.bytes) c = static_cast<char>(rng());
  }
  return t;
}

// docs/formats/safetensors.md §5: the Hugging Face style minimal file, byte for byte.
TEST(SafetensorsWriter, SpecMinimalExampleExactBytes) {
  float v[2] = {1.0f, 2.0f};
  std::vector<TensorData> tensors = {{{"a", DType::kF32, {2}}, std::as_bytes(std::span(v))}};
  auto file = serialize_safetensors(tensors, {{"format", "mlx"}});
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  EXPECT_EQ(to_hex(*file),
            "58000000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174"
            "223a226d6c78227d2c2261223a7b226474797065223a22463332222c22736861"
            "7065223a5b325d2c22646174615f6f666673657473223a5b302c385d7d7d2020"
            "0000803f00000040");
  // And it reads back.
  auto h = parse_safetensors_header(as_bytes(*file), "mem");
  ASSERT_TRUE(h.ok()) << h.error().to_string();
  EXPECT_EQ(h->metadata.at("format"), "mlx");
}

TEST(SafetensorsWriter, HeaderOrderFieldsAndPadding) {
  auto owned = sample_tensors();
  auto file = serialize_safetensors(view(owned), {});
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  uint64_t n;
  std::memcpy(&n, file->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  std::string header = file->substr(8, n);
  // Widest dtype first (I64, F32, BF16, F16, BOOL), then by name; no metadata.
  std::string json = header.substr(0, header.find_last_not_of(' ') + 1);
  EXPECT_EQ(json, R"({"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},)"
                  R"("emb":{"dtype":"F32","shape":[2,3],"data_offsets":[24,48]},)"
                  R"("norm":{"dtype":"F32","shape":[4],"data_offsets":[48,64]},)"
                  R"("layers.0.w":{"dtype":"BF16","shape":[4,4],"data_offsets":[64,96]},)"
                  R"("layers.1.w":{"dtype":"BF16","shape":[3,4],"data_offsets":[96,120]},)"
                  R"("empty":{"dtype":"F16","shape":[0],"data_offsets":[120,120]},)"
                  R"("mask":{"dtype":"BOOL","shape":[5],"data_offsets":[120,125]}})");
  EXPECT_EQ(header.size() - json.size(), (8 - json.size() % 8) % 8);
  EXPECT_EQ(file->size(), 8 + n + 125);
}

TEST(SafetensorsWriter, SameTensorsAnyOrderSameBytes) {
  auto owned = sample_tensors();
  auto first = serialize_safetensors(view(owned), {{"format", "mlx"}, {"a", "b"}});
  ASSERT_TRUE(first.ok());
  std::mt19937 rng(1);
  for (int i = 0; i < 10; ++i) {
    std::shuffle(owned.begin(), owned.end(), rng);
    auto again = serialize_safetensors(view(owned), {{"a", "b"}, {"format", "mlx"}});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *first);
  }
}

TEST(SafetensorsWriter, PaddingForEveryHeaderLength) {
  for (int len = 1; len <= 16; ++len) {
    std::string name(static_cast<size_t>(len), 'n');
    std::vector<TensorData> t = {{{name, DType::kU8, {1}}, as_bytes(std::string_view("q"))}};
    auto file = serialize_safetensors(t, {});
    ASSERT_TRUE(file.ok());
    auto h = parse_safetensors_header(as_bytes(*file), "mem");
    ASSERT_TRUE(h.ok()) << h.error().to_string();
    EXPECT_EQ(h->data_offset() % 8, 0u) << len;
    EXPECT_EQ(h->tensors[0].name, name);
  }
}

TEST(SafetensorsWriter, EscapesNamesAndMetadata) {
  std::string name = "odd \"name\" \\ with\ttab and \xc3\xa9";
  std::vector<TensorData> t = {{{name, DType::kU8, {1}}, as_bytes(std::string_view("q"))}};
  auto file = serialize_safetensors(t, {{"k\n", "v\"\x01"}});
  ASSERT_TRUE(file.ok()) << file.error().to_string();
  EXPECT_NE(file->find(R"("odd \"name\" \\ with\ttab and )"
                       "\xc3\xa9\""),
            std::string::npos);
  EXPECT_NE(file->find(R"("k\n":"v\"\u0001")"), std::string::npos);
  auto h = parse_safetensors_header(as_bytes(*file), "mem");
  ASSERT_TRUE(h.ok()) << h.error().to_string();
  EXPECT_EQ(h->tensors[0].name, name);
  EXPECT_EQ(h->metadata.at("k\n"), "v\"\x01");
}

TEST(SafetensorsWriter, PlanRejectsBadDeclarations) {
  auto plan = [](std::vector<TensorDecl> d) { return SafetensorsLayout::plan(std::move(d), {}, "out.safetensors"); };
  auto r = plan({{"a", DType::kU8, {1}}, {"a", DType::kU8, {2}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidInput);
  EXPECT_NE(r.error().message.find("'a' declared twice"), std::string::npos);
  EXPECT_FALSE(plan({{"", DType::kU8, {1}}}).ok());
  EXPECT_FALSE(plan({{"__metadata__", DType::kU8, {1}}}).ok());
  EXPECT_FALSE(plan({{"a", DType::kU8, {-1}}}).ok());
  EXPECT_FALSE(plan({{"bad\xff", DType::kU8, {1}}}).ok());
  EXPECT_FALSE(plan({{"a", DType::kF64, {int64_t{1} << 62}}}).ok());
}

TEST(SafetensorsWriter, StreamsTensorsInAnyOrderAndInPieces) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/out").ok());
  auto owned = sample_tensors();
  std::vector<TensorDecl> decls;
  for (const Owned& o : owned) decls.push_back(o.decl);
  auto layout = SafetensorsLayout::plan(decls, {{"format", "mlx"}});
  ASSERT_TRUE(layout.ok());
  auto writer = SafetensorsWriter::create(fs, "/out/m.safetensors", std::move(*layout));
  ASSERT_TRUE(writer.ok()) << writer.error().to_string();
  for (auto it = owned.rbegin(); it != owned.rend(); ++it) {
    std::span<const std::byte> b = bytes_of(it->bytes);
    size_t half = b.size() / 2;
    // Second half first, then the first half.
    ASSERT_TRUE((*writer)->write_tensor_part(it->decl.name, half, b.subspan(half)).ok());
    ASSERT_TRUE((*writer)->write_tensor_part(it->decl.name, 0, b.first(half)).ok());
  }
  EXPECT_FALSE(fs.stat("/out/m.safetensors").ok()) << "visible before finish()";
  ASSERT_TRUE((*writer)->finish().ok());
  auto expected = serialize_safetensors(view(owned), {{"format", "mlx"}});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*fs.contents("/out/m.safetensors"), *expected);
  auto names = fs.list_dir("/out");
  EXPECT_EQ(*names, std::vector<std::string>{"m.safetensors"});
}

TEST(SafetensorsWriter, ConcurrentWritersOnRealFiles) {
  TempDir dir;
  auto fs = make_real_file_system();
  std::vector<Owned> owned;
  for (int i = 0; i < 64; ++i) {
    Owned o{{fmt::format("t.{}", i), i % 2 ? DType::kF32 : DType::kBF16, {i + 1, 33}}, {}};
    o.bytes.assign(static_cast<size_t>((i + 1) * 33) * dtype_size(o.decl.dtype), static_cast<char>('a' + i % 26));
    owned.push_back(std::move(o));
  }
  std::vector<TensorDecl> decls;
  for (const Owned& o : owned) decls.push_back(o.decl);
  auto layout = SafetensorsLayout::plan(decls, {});
  ASSERT_TRUE(layout.ok());
  fs::path path = dir.path() / "m.safetensors";
  auto writer = SafetensorsWriter::create(*fs, path, std::move(*layout));
  ASSERT_TRUE(writer.ok()) << writer.error().to_string();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < owned.size(); i += 8)
        if (!(*writer)->write_tensor(owned[i].decl.name, bytes_of(owned[i].bytes)).ok()) ++failures;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE((*writer)->finish().ok());
  auto expected = serialize_safetensors(view(owned), {});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*fs->read_file(path), *expected);
}

TEST(SafetensorsWriter, WriteErrorsAndIncompleteFilesLeaveNothing) {
  MemoryFileSystem fs;
  ASSERT_TRUE(fs.create_dirs("/out").ok());
  auto layout = SafetensorsLayout::plan({{"a", DType::kF32, {2}}, {"b", DType::kU8, {3}}}, {});
  ASSERT_TRUE(layout.ok());
  {
    auto writer = SafetensorsWriter::create(fs, "/out/m.safetensors", std::move(*layout));
    ASSERT_TRUE(writer.ok());
    SafetensorsWriter& w = **writer;
    Status st = w.write_tensor("nope", as_bytes(std::string_view("xxx")));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().where, "nope");
    st = w.write_tensor("a", as_bytes(std::string_view("xxx")));
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("needs 8"), std::string::npos) << st.error().message;
    EXPECT_FALSE(w.write_tensor_part("b", 2, as_bytes(std::string_view("xx"))).ok());  // overruns
    ASSERT_TRUE(w.write_tensor("b", as_bytes(std::string_view("xyz"))).ok());
    EXPECT_FALSE(w.write_tensor("b", as_bytes(std::string_view("xyz"))).ok());  // twice
    st = w.finish();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().where, "a");
    EXPECT_NE(st.error().message.find("only 0 of 8 bytes"), std::string::npos);
  }
  // The abandoned writer removed its temp file; nothing appeared.
  EXPECT_TRUE(fs.list_dir("/out")->empty());
}

TEST(SafetensorsWriter, FailedDiskWriteReportsAndCleansUp) {
  MemoryFileSystem mem;
  ASSERT_TRUE(mem.create_dirs("/out").ok());
  FaultyFileSystem faulty(mem);
  float v[2] = {1, 2};
  std::vector<TensorData> t = {{{"a", DType::kF32, {2}}, std::as_bytes(std::span(v))}};
  for (int n = 1; n <= 3; ++n) {
    faulty.fail_write_after(n);
    Status st = write_safetensors(faulty, "/out/m.safetensors", t, {});
    faulty.clear_faults();
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.error().code, Errc::kIo);
    EXPECT_TRUE(mem.list_dir("/out")->empty()) << n;
  }
  ASSERT_TRUE(write_safetensors(faulty, "/out/m.safetensors", t, {}).ok());
  auto f = SafetensorsFile::open(mem, "/out/m.safetensors");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->get("a").bytes.size(), 8u);
}

}  // namespace
}  // namespace mb
