// The native model steps end to end through the real binary: `inspect` and
// `diff` on the bundled example and on small models written here, and every
// kind of bad model input (issue 3, "Bad input") through `modelbuild TARGET`:
// a clear error naming the tensor or file, exit status 2, nothing in the cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "tensors/fuse_test_support.h"
#include "tests/e2e_support.h"

namespace mb::e2e {
namespace {

using fuse_test::make_module;
using fuse_test::ModelSpec;
using fuse_test::tiny_qwen;
using fuse_test::write_mlx_adapter;
using fuse_test::write_model;

// Regular files anywhere under `dir` (none when it does not exist).
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) out.push_back(it->path().string());
  return out;
}

// Rewrites a safetensors file with a new JSON header, keeping its data.
void replace_header(const fs::path& file, const nlohmann::ordered_json& header) {
  std::string bytes = read_file(file);
  uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  std::string data = bytes.substr(8 + len);
  std::string h = header.dump();
  uint64_t n = h.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << out << h << data;
}

nlohmann::ordered_json header_of(const fs::path& file) {
  std::string bytes = read_file(file);
  uint64_t len = 0;
  std::memcpy(&len, bytes.data(), 8);
  return nlohmann::ordered_json::parse(bytes.substr(8, len));
}

class TensorsCliTest : public ::testing::Test {
 protected:
  fs::path dir() const { return m_tmp.path(); }
  fs::path tiny() const { return source_dir() / "examples/tiny"; }

  // A float (bf16) base and a LoRA on layer 0's q_proj and v_proj, plus a
  // recipe whose target `fused` fuses them in float, and `fused_8bit` then
  // quantizes to 8 bits.
  void write_project() {
    write_model(*m_fs, dir() / "base", tiny_qwen(DType::kBF16));
    write_mlx_adapter(*m_fs, dir() / "lora",
                      {make_module("model.layers.0.self_attn.q_proj", 64, 64, 4, 2.0f, 11),
                       make_module("model.layers.0.self_attn.v_proj", 32, 64, 4, 2.0f, 12)});
    write_recipe();
  }
  void write_recipe() {
    write_file(dir() / "modelbuild.yaml", R"(
sources: {base: base, lora: lora}
targets:
  fused:
    base: base
    adapters: [lora]
    fusion: dequantize
    dtype: bfloat16
    gate: null
  fused_8bit:
    base: base
    adapters: [lora]
    fusion: dequantize
    dtype: bfloat16
    bits: 8
    group_size: 32
    gate: null
)");
  }

  // Builds `target`, expects exit 2 with every `needles` in the output, and
  // checks that nothing was published: no action-cache entry, no blob, no
  // staging directory left, no build/ output.
  void expect_bad_input(const std::string& target, const std::vector<std::string>& needles) {
    CliRun r = modelbuild(dir(), {target});
    EXPECT_EQ(r.code, 2) << r.output;
    for (const std::string& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << n << "\n" << r.output;
    const fs::path cache = dir() / ".modelbuild";
    EXPECT_TRUE(files_under(cache / "ac").empty()) << files_under(cache / "ac").front();
    EXPECT_TRUE(files_under(cache / "cas").empty()) << files_under(cache / "cas").front();
    EXPECT_TRUE(files_under(cache / "tmp").empty()) << files_under(cache / "tmp").front();
    EXPECT_FALSE(fs::exists(dir() / "build" / target));
  }

  TempDir m_tmp{"tensors-cli-test"};
  std::unique_ptr<FileSystem> m_fs = make_real_file_system();
};

// ---- inspect ------------------------------------------------------------------

TEST_F(TensorsCliTest, InspectsTheExampleBaseModel) {
  CliRun r = modelbuild(dir(), {"inspect", (tiny() / "models/base-4bit").string()});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.out.find("4-bit gs64 (BF16 scales)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("×  4.50 / 8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bits per weight"), std::string::npos) << r.out;

  CliRun j = modelbuild(dir(), {"inspect", "--json", (tiny() / "models/base-4bit").string()});
  ASSERT_EQ(j.code, 0) << j.output;
  auto doc = nlohmann::json::parse(j.out);
  // Recount from the tensor list: a packed U32 weight holds 32/bits values.
  uint64_t params = 0, bytes = 0;
  for (const auto& t : doc["tensors"]) {
    bytes += t["bytes"].get<uint64_t>();
    if (t.contains("quantization_overhead")) continue;
    uint64_t n = 1;
    const auto& shape = t.contains("quantization") ? t["quantization"]["shape"] : t["shape"];
    for (const auto& d : shape) n *= d.get<uint64_t>();
    params += n;
    if (t.contains("quantization")) {
      EXPECT_EQ(t["quantization"]["bits"], 4) << t["name"];
      EXPECT_EQ(t["shape"].back().get<uint64_t>() * 8, t["quantization"]["shape"].back().get<uint64_t>()) << t["name"];
    }
  }
  EXPECT_EQ(doc["parameters"].get<uint64_t>(), params);
  EXPECT_EQ(doc["tensor_bytes"].get<uint64_t>(), bytes);
  EXPECT_GT(doc["safetensors_bytes"].get<uint64_t>(), bytes);  // plus the header
  bool saw_4bit = false;
  for (const auto& g : doc["groups"]) {
    if (g["label"] != "4-bit gs64 (BF16 scales)") continue;
    saw_4bit = true;
    EXPECT_DOUBLE_EQ(g["nominal_bits"].get<double>(), 4.5);
    // size = params × 4.5 / 8 exactly: packed codes plus bf16 scale and bias per 64.
    EXPECT_EQ(g["bytes"].get<uint64_t>() * 8 * 2, g["parameters"].get<uint64_t>() * 9);
  }
  EXPECT_TRUE(saw_4bit);
  const double bpw = doc["bits_per_weight"].get<double>();
  EXPECT_GT(bpw, 4.5);  // the float norms and biases cost a little more
  EXPECT_LT(bpw, 4.6);
}

TEST_F(TensorsCliTest, InspectListsTensorsAndReadsAdapters) {
  CliRun r = modelbuild(dir(), {"inspect", "--tensors", (tiny() / "models/base-4bit").string()});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.out.find("model.layers.0.self_attn.q_proj.weight  U32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("4-bit gs64 → ["), std::string::npos) << r.out;

  CliRun a = modelbuild(dir(), {"inspect", (tiny() / "adapters/tools-lora").string()});
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_NE(a.out.find("adapter "), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("MLX LoRA"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("rank 8"), std::string::npos) << a.out;
}

TEST_F(TensorsCliTest, InspectOfAFloatModelCountsSixteenBitsPerWeight) {
  write_model(*m_fs, dir() / "m", tiny_qwen(DType::kF16));
  CliRun j = modelbuild(dir(), {"inspect", "--json", "m"});
  ASSERT_EQ(j.code, 0) << j.output;
  auto doc = nlohmann::json::parse(j.out);
  uint64_t params = 0;
  for (const auto& t : tiny_qwen(DType::kF16).tensors) params += static_cast<uint64_t>(fuse_test::numel(t.shape));
  EXPECT_EQ(doc["parameters"].get<uint64_t>(), params);
  EXPECT_EQ(doc["tensor_bytes"].get<uint64_t>(), params * 2);
  EXPECT_DOUBLE_EQ(doc["bits_per_weight"].get<double>(), 16.0);
}

TEST_F(TensorsCliTest, InspectBadInputExitsTwoNamingThePath) {
  CliRun r = modelbuild(dir(), {"inspect", "nothere"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("nothere"), std::string::npos) << r.output;
  fs::create_directories(dir() / "empty");
  r = modelbuild(dir(), {"inspect", "empty"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("empty"), std::string::npos) << r.output;
}

// ---- diff ---------------------------------------------------------------------

TEST_F(TensorsCliTest, DiffOfAModelWithItselfIsIdentical) {
  const std::string base = (tiny() / "models/base-4bit").string();
  CliRun r = modelbuild(dir(), {"diff", base, base});
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.out.find(" 0 different, 0 only in a, 0 only in b, 0 shape mismatches"), std::string::npos) << r.out;
  CliRun j = modelbuild(dir(), {"diff", "--json", "-j", "2", base, base});
  EXPECT_EQ(j.code, 0) << j.output;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_TRUE(doc["same"].get<bool>());
  EXPECT_GT(doc["identical"].get<int>(), 0);
}

TEST_F(TensorsCliTest, DiffOfBaseAndFusedNamesTheChangedTensors) {
  write_project();
  CliRun b = modelbuild(dir(), {"fused"});
  ASSERT_EQ(b.code, 0) << b.output;

  CliRun r = modelbuild(dir(), {"diff", "base", "build/fused"});
  EXPECT_EQ(r.code, 1) << r.output;  // like diff(1): they differ
  EXPECT_NE(r.out.find("~ model.layers.0.self_attn.q_proj.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("~ model.layers.0.self_attn.v_proj.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("max |Δ|"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 different"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("k_proj"), std::string::npos) << r.out;  // unchanged tensors are not listed
  CliRun all = modelbuild(dir(), {"diff", "--all", "base", "build/fused"});
  EXPECT_NE(all.out.find("= model.layers.0.self_attn.k_proj.weight"), std::string::npos) << all.out;

  // The figures match the LoRA delta computed here: ΔW = scale · B·A.
  CliRun j = modelbuild(dir(), {"diff", "--json", "base", "build/fused"});
  EXPECT_EQ(j.code, 1);
  auto doc = nlohmann::json::parse(j.out);
  const ModelSpec spec = tiny_qwen(DType::kBF16);
  for (const auto& [module, out, seed] : {std::tuple{"q_proj", 64, 11u}, std::tuple{"v_proj", 32, 12u}}) {
    const std::string name = std::string("model.layers.0.self_attn.") + module + ".weight";
    LoraModule m = make_module(std::string("model.layers.0.self_attn.") + module, out, 64, 4, 2.0f, seed);
    const std::vector<float>* w = nullptr;
    for (const auto& t : spec.tensors)
      if (t.name == name) w = &t.values;
    ASSERT_NE(w, nullptr);
    double max_delta = 0, dd = 0, ww = 0;
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < 64; ++i) {
        double d = 0;
        for (int64_t k = 0; k < 4; ++k) d += double{m.b[o * 4 + k]} * double{m.a[k * 64 + i]};
        d *= m.scale;
        const double w0 = round_to_dtype((*w)[static_cast<size_t>(o * 64 + i)], DType::kBF16);
        max_delta = std::max(max_delta, std::abs(d));
        dd += d * d;
        ww += w0 * w0;
      }
    const nlohmann::json* e = nullptr;
    for (const auto& t : doc["tensors"])
      if (t["name"] == name) e = &t;
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ((*e)["kind"], "different");
    // The fused weight is rounded to bf16 once (relative error ≤ 2⁻⁸ of |W|).
    const double slack = 0.08 * std::ldexp(1.0, -8) + 1e-6;
    EXPECT_NEAR((*e)["max_abs"].get<double>(), max_delta, slack) << name;
    EXPECT_NEAR((*e)["rel"].get<double>(), std::sqrt(dd / ww), 0.02 * std::sqrt(dd / ww) + 4e-3) << name;
  }
}

TEST_F(TensorsCliTest, DiffComparesAQuantizedModelWithItsFloatSource) {
  write_project();
  CliRun b = modelbuild(dir(), {"fused", "fused_8bit"});
  ASSERT_EQ(b.code, 0) << b.output;
  CliRun j = modelbuild(dir(), {"diff", "--json", "build/fused", "build/fused_8bit"});
  EXPECT_EQ(j.code, 1) << j.output;
  auto doc = nlohmann::json::parse(j.out);
  EXPECT_EQ(doc["only_in_a"], 0);
  EXPECT_EQ(doc["only_in_b"], 0);  // scales/biases fold into their weight
  EXPECT_EQ(doc["shape_mismatch"], 0);
  for (const auto& t : doc["tensors"])
    if (t["kind"] == "different") {
      EXPECT_LT(t["rel"].get<double>(), 0.01) << t["name"];  // 8 bits: small error
    }
}

TEST_F(TensorsCliTest, DiffBadInputExitsTwo) {
  write_model(*m_fs, dir() / "m", tiny_qwen(DType::kF16));
  CliRun r = modelbuild(dir(), {"diff", "m", "nothere"});
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("nothere"), std::string::npos) << r.output;
  r = modelbuild(dir(), {"diff", "m"});
  EXPECT_EQ(r.code, 2) << r.output;
}

// ---- bad input through the build ---------------------------------------------

TEST_F(TensorsCliTest, AdapterShapeMismatchNamesTheModule) {
  write_model(*m_fs, dir() / "base", tiny_qwen(DType::kBF16));
  // down_proj is [64, 128]; this adapter claims [64, 96].
  write_mlx_adapter(*m_fs, dir() / "lora", {make_module("model.layers.0.mlp.down_proj", 64, 96, 4, 1.0f, 1)});
  write_recipe();
  expect_bad_input("fused", {"model.layers.0.mlp.down_proj", "adapters.safetensors", "[64, 128]"});
}

TEST_F(TensorsCliTest, AdapterModuleMissingFromTheBase) {
  write_model(*m_fs, dir() / "base", tiny_qwen(DType::kBF16));
  write_mlx_adapter(*m_fs, dir() / "lora", {make_module("model.layers.7.self_attn.q_proj", 64, 64, 4, 1.0f, 1)});
  write_recipe();
  expect_bad_input("fused_8bit", {"model.layers.7.self_attn.q_proj", "adapters.safetensors"});
}

TEST_F(TensorsCliTest, GroupSizeThatDoesNotDivideTheBaseDimension) {
  // A 4-bit gs32 base with hidden size 96 whose config claims group size 64:
  // 64 does not divide 96.
  ModelSpec spec = tiny_qwen(DType::kBF16, 1, 96, 128);
  spec.quant = QuantParams{4, 32, QuantKernel::kGpu};
  write_model(*m_fs, dir() / "base", spec);
  auto config = nlohmann::ordered_json::parse(read_file(dir() / "base/config.json"));
  config["quantization"]["group_size"] = 64;
  config["quantization_config"]["group_size"] = 64;
  write_file(dir() / "base/config.json", config.dump(2));
  write_mlx_adapter(*m_fs, dir() / "lora", {make_module("model.layers.0.self_attn.q_proj", 96, 96, 4, 1.0f, 1)});
  write_recipe();
  expect_bad_input("fused", {"group size 64", "model."});
}

TEST_F(TensorsCliTest, TruncatedSafetensorsNamesTheFile) {
  write_project();
  const fs::path file = dir() / "base/model.safetensors";
  const std::string full = read_file(file);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << full.substr(0, full.size() - 100);
  expect_bad_input("fused", {"model.safetensors"});
}

TEST_F(TensorsCliTest, HostileHeaderLengthNamesTheFile) {
  write_project();
  const fs::path file = dir() / "base/model.safetensors";
  std::string bytes = read_file(file);
  const uint64_t huge = uint64_t{1} << 40;
  std::memcpy(bytes.data(), &huge, 8);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  expect_bad_input("fused", {"model.safetensors", "header"});
}

TEST_F(TensorsCliTest, OffsetsOutOfBoundsNameTheTensor) {
  write_project();
  const fs::path file = dir() / "base/model.safetensors";
  auto header = header_of(file);
  header["model.norm.weight"]["data_offsets"][1] = uint64_t{1} << 33;
  replace_header(file, header);
  expect_bad_input("fused", {"model.safetensors", "model.norm.weight"});
}

TEST_F(TensorsCliTest, ATensorMovedPastTheEndIsTheOneNamed) {
  // Moving a tensor that is not the last one past the end leaves a gap in
  // the middle: the message must name the moved tensor, not its neighbour.
  write_project();
  const fs::path file = dir() / "base/model.safetensors";
  auto header = header_of(file);
  std::string first;
  uint64_t lowest = UINT64_MAX;
  for (const auto& [name, t] : header.items())
    if (name != "__metadata__" && t["data_offsets"][0].get<uint64_t>() < lowest) {
      lowest = t["data_offsets"][0].get<uint64_t>();
      first = name;
    }
  const uint64_t size = header[first]["data_offsets"][1].get<uint64_t>() - lowest;
  header[first]["data_offsets"] = {uint64_t{1} << 30, (uint64_t{1} << 30) + size};
  replace_header(file, header);
  expect_bad_input("fused", {"model.safetensors", "'" + first + "'", "past the end of the file"});
}

TEST_F(TensorsCliTest, UnsupportedDtypeNamesTheTensor) {
  for (const char* dtype : {"F64", "F8_E4M3"}) {
    SCOPED_TRACE(dtype);
    write_project();
    const fs::path file = dir() / "base/model.safetensors";
    // Relabel an F32-sized stretch: model.norm.weight (64 bf16 = 128 bytes)
    // becomes 16 F64 or 128 F8 values, so the header stays self-consistent.
    auto header = header_of(file);
    header["model.norm.weight"]["dtype"] = dtype;
    header["model.norm.weight"]["shape"] =
        std::string(dtype) == "F64" ? std::vector<int64_t>{16} : std::vector<int64_t>{128};
    replace_header(file, header);
    expect_bad_input("fused", {"model.norm.weight", dtype});
    fs::remove_all(dir() / ".modelbuild");
  }
}

}  // namespace
}  // namespace mb::e2e
