// fuse_bench: LoRA fusion and quantization throughput on a Qwen2.5-0.5B-shaped
// model (hidden 896, intermediate 4864, 24 layers, 14 heads / 2 KV heads of
// 64, vocab 151936, tied embeddings) stored MLX 4-bit gs 64 with bf16
// scales, with a rank-16 LoRA on every linear layer. `--shape 7b` uses
// Qwen2.5-7B's shapes instead (hidden 3584, intermediate 18944, 28 layers,
// 28 heads / 4 KV heads of 128, vocab 152064, untied lm_head); pass fewer
// --layers to fit the disk (each 7B layer is ~233M parameters).
//
//   fuse_bench [--shape 0.5b|7b] [--layers N] [--rank 16] [--threads N] [--dir DIR] [--only STEP]
//              [--repeat 3]
//
// Writes the synthetic model and adapter to a temp dir (removed at exit,
// unless --dir is given), then runs each step in a forked child (so its peak
// RSS is its own, from wait4) and reports, per step: wall time, the time
// merely to write the same output bytes with the streaming writer, output
// throughput, and peak RSS against the budget "2 × largest tensor in f32 +
// 200 MB". Steps: in-place fusion → 4-bit; dequantize fusion → f16; f16 →
// 8-bit quantization; the standalone retention measurement.
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/parallel.h"
#include "base/platform.h"
#include "base/reporter.h"
#include "base/temp_dir.h"
#include "tensors/adapters.h"
#include "tensors/fuse.h"
#include "tensors/inspect.h"
#include "tensors/kernels.h"
#include "tensors/model_dir.h"
#include "tensors/quantize_model.h"

namespace mb {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct Shape {
  int64_t hidden, inter, kv, vocab, head_dim;
  int layers;
  bool tied;
};
constexpr Shape kQwen05b{896, 4864, 128, 151936, 64, 24, true};
constexpr Shape kQwen7b{3584, 18944, 512, 152064, 128, 28, false};

struct Options {
  Shape shape = kQwen05b;
  int layers = 0;  // 0: the shape's own
  int rank = 16;
  int threads = 0;
  std::string dir;
  std::string only;  // run just the steps whose name contains this
  int repeat = 3;    // runs per step (and of its write-only baseline); medians are shown
};

// The shape being benchmarked (set once in main, before anything runs).
int64_t kHidden = 896, kInter = 4864, kKv = 128, kVocab = 151936, kHeadDim = 64;
bool kTied = true;

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
  float uniform(float amp) {
    return static_cast<float>((static_cast<double>(next() >> 11) / 9007199254740992.0 * 2 - 1) * amp);
  }
};

struct Linear {
  std::string module;
  int64_t out, in;
  bool bias;
};

std::vector<Linear> linears(int layers) {
  std::vector<Linear> v;
  for (int l = 0; l < layers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    v.push_back({p + "self_attn.q_proj", kHidden, kHidden, true});
    v.push_back({p + "self_attn.k_proj", kKv, kHidden, true});
    v.push_back({p + "self_attn.v_proj", kKv, kHidden, true});
    v.push_back({p + "self_attn.o_proj", kHidden, kHidden, false});
    v.push_back({p + "mlp.gate_proj", kInter, kHidden, false});
    v.push_back({p + "mlp.up_proj", kInter, kHidden, false});
    v.push_back({p + "mlp.down_proj", kHidden, kInter, false});
  }
  return v;
}

std::vector<std::byte> random_bytes(Rng& rng, size_t n) {
  std::vector<std::byte> b(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t x = rng.next();
    std::memcpy(b.data() + i, &x, std::min<size_t>(8, n - i));
  }
  return b;
}

std::vector<std::byte> bf16_bytes(const std::vector<float>& v) {
  std::vector<std::byte> b(v.size() * 2);
  if (!from_f32(v, DType::kBF16, b).ok()) std::abort();
  return b;
}

Status write_base(FileSystem& fs, const fs::path& dir, int layers) {
  Rng rng{0x1234567};
  std::vector<TensorDecl> decls;
  auto quantized = [&](const std::string& m, int64_t out, int64_t in) {
    decls.push_back({m + ".weight", DType::kU32, {out, in / 8}});
    decls.push_back({m + ".scales", DType::kBF16, {out, in / 64}});
    decls.push_back({m + ".biases", DType::kBF16, {out, in / 64}});
  };
  quantized("model.embed_tokens", kVocab, kHidden);
  if (!kTied) quantized("lm_head", kVocab, kHidden);
  decls.push_back({"model.norm.weight", DType::kBF16, {kHidden}});
  for (const Linear& l : linears(layers)) {
    quantized(l.module, l.out, l.in);
    if (l.bias) decls.push_back({l.module + ".bias", DType::kBF16, {l.out}});
  }
  for (int l = 0; l < layers; ++l)
    for (const char* n : {"input_layernorm", "post_attention_layernorm"})
      decls.push_back({fmt::format("model.layers.{}.{}.weight", l, n), DType::kBF16, {kHidden}});
  nlohmann::ordered_json config = {{"architectures", {"Qwen2ForCausalLM"}},
                                   {"model_type", "qwen2"},
                                   {"hidden_size", kHidden},
                                   {"intermediate_size", kInter},
                                   {"num_hidden_layers", layers},
                                   {"num_attention_heads", kHidden / kHeadDim},
                                   {"num_key_value_heads", kKv / kHeadDim},
                                   {"vocab_size", kVocab},
                                   {"tie_word_embeddings", kTied},
                                   {"torch_dtype", "bfloat16"},
                                   {"quantization", {{"group_size", 64}, {"bits", 4}, {"mode", "affine"}}}};
  MB_ASSIGN(auto writer, ModelDirWriter::create(fs, dir, decls, config));
  for (const TensorDecl& d : decls) {
    const size_t n = static_cast<size_t>(d.shape.size() == 2 ? d.shape[0] * d.shape[1] : d.shape[0]);
    std::vector<std::byte> bytes;
    if (d.dtype == DType::kU32) {
      bytes = random_bytes(rng, n * 4);
    } else {
      std::vector<float> v(n);
      const bool scales = d.name.ends_with(".scales"), biases = d.name.ends_with(".biases");
      for (float& x : v)
        x = scales                            ? 0.002f + std::abs(rng.uniform(0.002f))
            : biases                          ? -7.5f * 0.003f + rng.uniform(0.003f)
            : d.name.ends_with("norm.weight") ? 1.0f + rng.uniform(0.1f)
                                              : rng.uniform(0.05f);
      bytes = bf16_bytes(v);
    }
    MB_TRY(writer->write_tensor(d.name, bytes));
  }
  MB_TRY(writer->finish());
  return write_file_atomic(fs, dir / "tokenizer.json", std::string("{\"model\":{\"type\":\"BPE\"}}"));
}

Status write_adapter(FileSystem& fs, const fs::path& dir, int layers, int rank) {
  MB_TRY(fs.create_dirs(dir));
  Rng rng{0xABCDEF};
  std::vector<std::pair<TensorDecl, std::vector<std::byte>>> tensors;
  for (const Linear& l : linears(layers)) {
    std::vector<float> a(static_cast<size_t>(l.in * rank)), b(static_cast<size_t>(rank * l.out));
    const float amp_a = 1.0f / std::sqrt(static_cast<float>(l.in));
    for (float& x : a) x = rng.uniform(amp_a);
    for (float& x : b) x = rng.uniform(0.0005f);
    auto f32 = [](const std::vector<float>& v) {
      std::vector<std::byte> out(v.size() * 4);
      std::memcpy(out.data(), v.data(), out.size());
      return out;
    };
    tensors.push_back({{l.module + ".lora_a", DType::kF32, {l.in, rank}}, f32(a)});
    tensors.push_back({{l.module + ".lora_b", DType::kF32, {rank, l.out}}, f32(b)});
  }
  std::vector<TensorData> data;
  for (auto& [d, b] : tensors) data.push_back({d, b});
  MB_TRY(write_safetensors(fs, dir / "adapters.safetensors", data, {}));
  nlohmann::ordered_json config = {{"fine_tune_type", "lora"},
                                   {"num_layers", layers},
                                   {"lora_parameters", {{"rank", rank}, {"scale", 20.0}, {"dropout", 0.0}}}};
  return write_file_atomic(fs, dir / "adapter_config.json", config.dump(4));
}

// Writes zeros in the layout of the model at `like` into `out`: the cost of
// the output bytes alone, with the same writer and the same final sync.
Result<uint64_t> write_same_bytes(FileSystem& fs, const fs::path& like, const fs::path& out) {
  MB_ASSIGN(ModelDir model, ModelDir::open(fs, like));
  std::vector<TensorDecl> decls;
  for (const TensorRef& t : model.weights().tensors()) decls.push_back({t.info->name, t.info->dtype, t.info->shape});
  MB_TRY(fs.create_dirs(out));
  MB_ASSIGN(auto writer, ModelDirWriter::create(fs, out, decls, model.config()));
  std::vector<std::byte> zeros(size_t{64} << 20);
  for (const TensorRef& t : model.weights().tensors())
    for (uint64_t off = 0; off < t.info->nbytes(); off += zeros.size()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), t.info->nbytes() - off));
      MB_TRY(writer->write_tensor_part(t.info->name, off, std::span<const std::byte>(zeros.data(), n)));
    }
  MB_TRY(writer->finish());
  return writer->plan().total_size;
}

struct StepResult {
  bool ok = false;
  double seconds = 0;
  double cpu_seconds = 0;  // user + system, all threads
  double peak_rss_mb = 0;
  nlohmann::json info;
};

// Runs `fn` in a forked child; fn returns a JSON object (or an error
// message under "error"). The child's peak RSS comes from wait4.
StepResult run_child(const std::function<nlohmann::json()>& fn) {
  // Start every step with no dirty pages from the previous one, so its wall
  // time does not include the kernel flushing someone else's output.
  ::sync();
  int fds[2];
  if (pipe(fds) != 0) return {};
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const auto t0 = Clock::now();
    nlohmann::json j = fn();
    j["seconds"] = seconds_since(t0);
    const std::string s = j.dump();
    if (write(fds[1], s.data(), s.size()) < 0) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  StepResult r;
  r.info = nlohmann::json::parse(text, nullptr, false);
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.info.is_object() && !r.info.contains("error");
  if (r.info.is_object() && r.info.contains("seconds")) r.seconds = r.info["seconds"].get<double>();
  r.peak_rss_mb = static_cast<double>(platform::maxrss_bytes(ru.ru_maxrss)) / (1024.0 * 1024.0);
  r.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
  return r;
}

nlohmann::json error_json(const Error& e) { return {{"error", e.to_string()}}; }

int run(const Options& opt) {
  std::unique_ptr<TempDir> temp;
  fs::path root = opt.dir;
  if (root.empty()) {
    temp = std::make_unique<TempDir>("fuse_bench");
    root = temp->path();
  }
  auto fs = make_real_file_system();
  NullReporter quiet;
  const fs::path base = root / "base", lora = root / "lora";
  const int threads = resolve_threads(opt.threads);
  fmt::print("fuse_bench: hidden {}, intermediate {}, vocab {}, {} layers, rank {}, {} threads, {} kernels, in {}\n",
             kHidden, kInter, kVocab, opt.layers, opt.rank, threads, kernels::isa(), root.string());

  StepResult gen = run_child([&]() -> nlohmann::json {
    if (Status s = fs->create_dirs(base); !s.ok()) return error_json(s.error());
    if (Status s = write_base(*fs, base, opt.layers); !s.ok()) return error_json(s.error());
    if (Status s = write_adapter(*fs, lora, opt.layers, opt.rank); !s.ok()) return error_json(s.error());
    return nlohmann::json::object();
  });
  if (!gen.ok) {
    fmt::print(stderr, "generation failed: {}\n", gen.info.dump());
    return 1;
  }
  auto base_info = inspect(*fs, base);
  if (base_info.ok()) fmt::print("{}", render_inspection(*base_info, false));
  const double largest_f32_mb = static_cast<double>(std::max(kVocab * kHidden, kInter * kHidden) * 4) / 1e6;
  const double budget_mb = 2 * largest_f32_mb + 200;

  struct Step {
    std::string name;
    fs::path out;
    std::function<nlohmann::json()> fn;
  };
  auto fuse_step = [&](FuseMode mode, const fs::path& out, int bits = 0) {
    return [&, mode, out, bits]() -> nlohmann::json {
      auto adapters = load_adapters(*fs, {lora});
      if (!adapters.ok()) return error_json(adapters.error());
      if (Status s = fs->create_dirs(out); !s.ok()) return error_json(s.error());
      FuseOptions o;
      o.mode = mode;
      o.dtype = DType::kF16;
      o.threads = threads;
      if (bits) o.quantize = QuantParams{bits, 64, QuantKernel::kGpu};
      auto r = fuse_model(*fs, base, *adapters, out, o, quiet);
      if (!r.ok()) return error_json(r.error());
      return {{"bytes", r->bytes}, {"verdict", r->retention.verdict()}};
    };
  };
  const fs::path inplace = root / "fused_4bit", f16 = root / "fused_f16", q8 = root / "fused_8bit",
                 direct8 = root / "fused_8bit_one_pass";
  std::vector<Step> steps = {
      {"fuse in place -> 4-bit", inplace, fuse_step(FuseMode::kInplace, inplace)},
      {"fuse dequantize -> f16", f16, fuse_step(FuseMode::kDequantize, f16)},
      {"quantize f16 -> 8-bit", q8,
       [&]() -> nlohmann::json {
         if (Status s = fs->create_dirs(q8); !s.ok()) return error_json(s.error());
         QuantizeOptions o;
         o.bits = 8;
         o.group_size = 64;
         o.threads = threads;
         auto r = quantize_model(*fs, f16, q8, o, nullptr, quiet);
         if (!r.ok()) return error_json(r.error());
         return {{"bytes", r->bytes}};
       }},
      // The streaming path: fused values go straight to 8 bits, no f16 model
      // written and read back in between. Same bytes as the two steps above.
      {"fuse dequantize -> 8-bit", direct8, fuse_step(FuseMode::kDequantize, direct8, 8)},
      {"retention of the 8-bit model", "",
       [&]() -> nlohmann::json {
         auto adapters = load_adapters(*fs, {lora});
         if (!adapters.ok()) return error_json(adapters.error());
         auto r = measure_retention(*fs, q8, base, *adapters, "8-bit quantization", 8, threads, quiet);
         if (!r.ok()) return error_json(r.error());
         return {{"bytes", 0}, {"verdict", r->verdict()}};
       }},
  };
  fmt::print("\n{:<30} {:>8} {:>8} {:>10} {:>8} {:>9} {:>9} {:>14}\n", "step", "seconds", "cpu s", "write-only",
             "ratio", "out GB/s", "out GB", "peak RSS MB");
  bool all_ok = true;
  std::vector<std::string> verdicts;
  // fuse → 8-bit as two passes (dequantize fusion to f16, then quantize)
  // and as the one streaming pass that `modelbuild` runs for a target with
  // adapters and bits, each against the time to write the 8-bit bytes alone.
  double f16_s = 0, q8_s = 0, q8_write_s = 0, q8_gb = 0, direct_s = 0, direct_write_s = 0;
  for (const Step& step : steps) {
    if (!opt.only.empty() && step.name.find(opt.only) == std::string::npos) continue;
    // The step and its write-only baseline alternate, so a burst of load on
    // a shared machine hits both; the medians are reported.
    std::vector<StepResult> runs;
    std::vector<double> write_runs;
    bool failed = false;
    for (int rep = 0; rep < opt.repeat; ++rep) {
      StepResult r = run_child(step.fn);
      if (!r.ok) {
        fmt::print("{:<30} FAILED {}\n", step.name, r.info.dump());
        failed = true;
        break;
      }
      runs.push_back(std::move(r));
      if (!step.out.empty()) {
        const fs::path w = root / "write_only";
        StepResult wr = run_child([&]() -> nlohmann::json {
          auto bytes = write_same_bytes(*fs, step.out, w);
          if (!bytes.ok()) return error_json(bytes.error());
          return {{"bytes", *bytes}};
        });
        (void)fs->remove_all(w);
        if (wr.ok) write_runs.push_back(wr.seconds);
      }
    }
    if (failed) {
      all_ok = false;
      continue;
    }
    std::sort(runs.begin(), runs.end(), [](const StepResult& a, const StepResult& b) { return a.seconds < b.seconds; });
    std::sort(write_runs.begin(), write_runs.end());
    const StepResult& r = runs[runs.size() / 2];
    const double write_s = write_runs.empty() ? 0 : write_runs[write_runs.size() / 2];
    const double gb = r.info.value("bytes", 0.0) / 1e9;
    fmt::print("{:<30} {:>8.2f} {:>8.2f} {:>10.2f} {:>8.2f} {:>9.2f} {:>9.3f} {:>8.0f} / {:.0f}\n", step.name,
               r.seconds, r.cpu_seconds, write_s, write_s > 0 ? r.seconds / write_s : 0.0,
               r.seconds > 0 ? gb / r.seconds : 0.0, gb, r.peak_rss_mb, budget_mb);
    if (runs.size() > 1)
      fmt::print("{:<30} {} runs: {:.2f} .. {:.2f} s; write-only {:.2f} .. {:.2f} s\n", "", runs.size(),
                 runs.front().seconds, runs.back().seconds, write_runs.empty() ? 0.0 : write_runs.front(),
                 write_runs.empty() ? 0.0 : write_runs.back());
    if (step.out == f16) f16_s = r.seconds;
    if (step.out == q8) q8_s = r.seconds, q8_write_s = write_s, q8_gb = gb;
    if (step.out == direct8) direct_s = r.seconds, direct_write_s = write_s, q8_gb = gb;
    if (r.info.contains("verdict")) verdicts.push_back(step.name + ": " + r.info["verdict"].get<std::string>());
  }
  if (f16_s > 0 && q8_s > 0 && q8_write_s > 0)
    fmt::print(
        "\nfuse -> 8-bit (dequantize fusion to f16, then quantize): {:.2f} s = {:.1f} x the {:.2f} s to write "
        "the {:.3f} GB of 8-bit output (target <= 1.5 x); {:.2f} GB/s of 8-bit output\n",
        f16_s + q8_s, (f16_s + q8_s) / q8_write_s, q8_write_s, q8_gb, q8_gb / (f16_s + q8_s));
  if (direct_s > 0 && direct_write_s > 0)
    fmt::print(
        "fuse -> 8-bit in one streaming pass (what modelbuild runs): {:.2f} s = {:.1f} x the {:.2f} s to write the "
        "{:.3f} GB of 8-bit "
        "output (target <= 1.5 x); {:.2f} GB/s of 8-bit output\n",
        direct_s, direct_s / direct_write_s, direct_write_s, q8_gb, q8_gb / direct_s);
  fmt::print("\nRSS budget = 2 × largest tensor in f32 ({:.0f} MB, the embedding) + 200 MB = {:.0f} MB.\n",
             largest_f32_mb, budget_mb);
  fmt::print("Peak RSS counts the memory-mapped input pages the step touched (file-backed, reclaimable).\n");
  for (const std::string& v : verdicts) fmt::print("{}\n", v);
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace mb

int main(int argc, char** argv) {
  mb::Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--shape") {
      const std::string v = next();
      if (v != "0.5b" && v != "7b") {
        std::fprintf(stderr, "fuse_bench: --shape must be 0.5b or 7b\n");
        return 2;
      }
      opt.shape = v == "7b" ? mb::kQwen7b : mb::kQwen05b;
    } else if (a == "--layers")
      opt.layers = std::stoi(next());
    else if (a == "--rank")
      opt.rank = std::stoi(next());
    else if (a == "--threads")
      opt.threads = std::stoi(next());
    else if (a == "--dir")
      opt.dir = next();
    else if (a == "--only")
      opt.only = next();
    else if (a == "--repeat")
      opt.repeat = std::max(1, std::stoi(next()));
    else {
      std::fprintf(stderr,
                   "usage: fuse_bench [--shape 0.5b|7b] [--layers N] [--rank 16] [--threads N] [--dir DIR] "
                   "[--only STEP] [--repeat 3]\n");
      return 2;
    }
  }
  if (opt.layers == 0) opt.layers = opt.shape.layers;
  mb::kHidden = opt.shape.hidden, mb::kInter = opt.shape.inter, mb::kKv = opt.shape.kv;
  mb::kVocab = opt.shape.vocab, mb::kHeadDim = opt.shape.head_dim, mb::kTied = opt.shape.tied;
  return mb::run(opt);
}
