// gguf_bench: GGUF export cost on Qwen2.5-0.5B shapes, one step per process
// so that bench/gguf_bench.sh can time each under /usr/bin/time -v (wall
// time, peak RSS). The synthetic model is fuse_bench's (MLX 4-bit base,
// rank-16 LoRA on every linear layer: `fuse_bench --dir DIR --only none`
// writes DIR/base and DIR/lora); `prepare` gives it the tokenizer and config
// keys a GGUF export needs.
//
//   gguf_bench prepare DIR TOKENIZER_DIR   tokenizer.json + tokenizer_config.json into DIR/base,
//                                          Qwen2.5's rope/norm/context keys into its config.json
//   gguf_bench fuse DIR TYPE OUT.gguf      fuse base + lora to a float model, then export TYPE (two steps)
//   gguf_bench one-pass DIR TYPE OUT.gguf  the same bytes in one streaming pass, no float model written
//                                          (the path a recipe's GGUF target with adapters runs)
//   gguf_bench export MODEL_DIR TYPE OUT.gguf    export a float model directory
//   gguf_bench write-only LIKE.gguf OUT.gguf     the same header and tensor sizes, zeros, same writer
//                                          and fsync: the cost of the output bytes alone
//
// Prints one JSON line per step: seconds and output bytes.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "base/temp_dir.h"
#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/gguf_export.h"
#include "tensors/gguf_reader.h"
#include "tensors/gguf_type_choice.h"
#include "tensors/gguf_writer.h"
#include "tensors/tensor_source.h"

namespace mb {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int fail(const Error& e) {
  std::fprintf(stderr, "gguf_bench: %s\n", e.to_string().c_str());
  return 1;
}

void report(const std::string& step, double seconds, uint64_t bytes) {
  fmt::print("{}\n", nlohmann::json{{"step", step}, {"seconds", seconds}, {"bytes", bytes}}.dump());
}

int prepare(const fs::path& dir, const fs::path& tokenizer_dir) {
  auto fs = make_real_file_system();
  const fs::path base = dir / "base";
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(tokenizer_dir / f, base / f, fs::copy_options::overwrite_existing);
  auto text = fs->read_file(base / "config.json");
  if (!text.ok()) return fail(text.error());
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(*text);
  config["rms_norm_eps"] = 1e-6;
  config["rope_theta"] = 1000000.0;
  config["max_position_embeddings"] = 32768;
  config["bos_token_id"] = 151643;
  config["eos_token_id"] = 151645;
  if (Status s = write_file_atomic(*fs, base / "config.json", config.dump(2)); !s.ok()) return fail(s.error());
  return 0;
}

// The export options every command uses: the named type, all cores.
Result<GgufExportOptions> export_options(const std::string& type) {
  auto t = gguf_file_type_from_name(type);
  if (!t) return Error{Errc::kInvalidInput, "", "unknown GGUF type " + type};
  GgufExportOptions e;
  e.file_type = *t;
  return e;
}

// Fuse in float16 (what the model's dtype rounds to), then export.
int fuse(const fs::path& dir, const std::string& type, const fs::path& out) {
  auto fs = make_real_file_system();
  auto e = export_options(type);
  if (!e.ok()) return fail(e.error());
  const auto t0 = Clock::now();
  auto adapters = load_adapters(*fs, {dir / "lora"});
  if (!adapters.ok()) return fail(adapters.error());
  TempDir tmp("gguf_bench");
  FuseOptions o;
  o.dtype = DType::kF16;
  NullReporter quiet;
  auto fused = fuse_model(*fs, dir / "base", *adapters, tmp.path(), o, quiet);
  if (!fused.ok()) return fail(fused.error());
  const double fuse_s = seconds_since(t0);
  auto r = export_gguf(tmp.path(), out, *e);
  if (!r.ok()) return fail(r.error());
  report("fuse f16", fuse_s, 0);
  report("fuse -> " + type, seconds_since(t0), r->bytes);
  return 0;
}

// Fuse in float16 and export in one pass (tensors/tensor_source.h).
int one_pass(const fs::path& dir, const std::string& type, const fs::path& out) {
  auto fs = make_real_file_system();
  auto e = export_options(type);
  if (!e.ok()) return fail(e.error());
  const auto t0 = Clock::now();
  auto adapters = load_adapters(*fs, {dir / "lora"});
  if (!adapters.ok()) return fail(adapters.error());
  NullReporter quiet;
  auto source = TensorSource::open_fused(*fs, dir / "base", *adapters, DType::kF16, quiet);
  if (!source.ok()) return fail(source.error());
  auto r = export_gguf(*fs, **source, out, *e);
  if (!r.ok()) return fail(r.error());
  report("one-pass " + type, seconds_since(t0), r->bytes);
  return 0;
}

int export_only(const fs::path& model, const std::string& type, const fs::path& out) {
  auto e = export_options(type);
  if (!e.ok()) return fail(e.error());
  const auto t0 = Clock::now();
  auto r = export_gguf(model, out, *e);
  if (!r.ok()) return fail(r.error());
  report("export " + type, seconds_since(t0), r->bytes);
  return 0;
}

// `like`'s metadata with the value types the reader saw.
GgufMetadata metadata_of(const GgufFile& like) {
  GgufMetadata m;
  for (const auto& [key, v] : like.metadata().items()) {
    switch (like.metadata_type(key)) {
      case 8:
        m.add_string(key, v.get<std::string>());
        break;
      case 4:
        m.add_u32(key, v.get<uint32_t>());
        break;
      case 5:
        m.add_i32(key, v.get<int32_t>());
        break;
      case 6:
        m.add_f32(key, v.get<float>());
        break;
      case 7:
        m.add_bool(key, v.get<bool>());
        break;
      default:
        if (v.is_array() && !v.empty() && v[0].is_string())
          m.add_strings(key, v.get<std::vector<std::string>>());
        else if (v.is_array() && !v.empty() && v[0].is_number_float())
          m.add_f32s(key, v.get<std::vector<float>>());
        else if (v.is_array())
          m.add_i32s(key, v.get<std::vector<int32_t>>());
    }
  }
  return m;
}

int write_only(const fs::path& like_path, const fs::path& out) {
  auto like = GgufFile::open(like_path);
  if (!like.ok()) return fail(like.error());
  const auto t0 = Clock::now();
  std::vector<GgufTensorDecl> decls;
  uint64_t largest = 0;
  for (const GgufTensorInfo& t : like->tensors()) {
    decls.push_back({t.name, t.dims, t.type});
    largest = std::max(largest, t.byte_size);
  }
  auto w = GgufWriter::create(out, metadata_of(*like), decls);
  if (!w.ok()) return fail(w.error());
  const std::vector<uint8_t> zeros(largest, 0);
  for (const GgufTensorInfo& t : like->tensors())
    if (Status s = (*w)->write_raw(t.name, std::span(zeros).first(t.byte_size)); !s.ok()) return fail(s.error());
  if (Status s = (*w)->finish(); !s.ok()) return fail(s.error());
  report("write-only", seconds_since(t0), (*w)->file_size());
  return 0;
}

}  // namespace
}  // namespace mb

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  if (a.size() == 3 && a[0] == "prepare") return mb::prepare(a[1], a[2]);
  if (a.size() == 4 && a[0] == "fuse") return mb::fuse(a[1], a[2], a[3]);
  if (a.size() == 4 && a[0] == "one-pass") return mb::one_pass(a[1], a[2], a[3]);
  if (a.size() == 4 && a[0] == "export") return mb::export_only(a[1], a[2], a[3]);
  if (a.size() == 3 && a[0] == "write-only") return mb::write_only(a[1], a[2]);
  std::fprintf(stderr,
               "usage: gguf_bench prepare DIR TOKENIZER_DIR | fuse DIR TYPE OUT | one-pass DIR TYPE OUT | "
               "export MODEL_DIR TYPE OUT | "
               "write-only LIKE.gguf OUT\n");
  return 2;
}
