// inference_bench: decode and prefill speed of the CPU engine on a
// Qwen2.5-0.5B-shaped model with random MLX-quantized weights, against the
// machine's memory bandwidth.
//
//   inference_bench [--bits 4|8|...] [--group-size 64] [--threads N]
//                   [--prompt 128] [--decode 64] [--dir DIR] [--model PATH]
//
// --model runs an existing model (a model directory, or anything else
// load_model accepts) instead of writing a random one, so that
// bench/engine_vs_llama.sh can time both engines on the same weights.
//
// Writes <dir>/model.safetensors + config.json (a temp dir, removed at exit,
// unless --dir is given),
// loads it through inference::load_model (mmapped, used in place), then
// reports: load time, prefill tok/s, decode tok/s, peak RSS vs size on disk,
// streaming-read bandwidth, and the bandwidth bound on decode
// (bytes of weights read per token / bandwidth).
#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/parallel.h"
#include "base/platform.h"
#include "base/temp_dir.h"
#include "inference/forward.h"
#include "inference/model.h"

namespace mb::inference {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU time of the whole process (all threads), to tell a slow kernel from a
// machine that is busy with other work.
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Options {
  int bits = 4;
  int group_size = 64;
  int threads = 0;
  int prompt = 128;
  int decode = 64;
  std::string dir;
  std::string model;  // an existing model instead of a random one
};

// Qwen2.5-0.5B shapes.
constexpr int kHidden = 896, kInter = 4864, kLayers = 24, kHeads = 14, kKvHeads = 2, kVocab = 151936;

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint16_t bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

struct TensorSpec {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  enum Fill { kCodes, kScales, kBiases, kOnes, kSmall } fill;
  uint64_t bytes() const {
    uint64_t n = dtype == "U32" ? 4 : 2;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

std::vector<TensorSpec> model_tensors(int bits, int gs) {
  std::vector<TensorSpec> t;
  auto quantized = [&](const std::string& m, int64_t out, int64_t in) {
    t.push_back({m + ".weight", "U32", {out, in * bits / 32}, TensorSpec::kCodes});
    t.push_back({m + ".scales", "BF16", {out, in / gs}, TensorSpec::kScales});
    t.push_back({m + ".biases", "BF16", {out, in / gs}, TensorSpec::kBiases});
  };
  const int64_t hd = kHidden / kHeads;
  quantized("model.embed_tokens", kVocab, kHidden);
  t.push_back({"model.norm.weight", "BF16", {kHidden}, TensorSpec::kOnes});
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    t.push_back({p + "input_layernorm.weight", "BF16", {kHidden}, TensorSpec::kOnes});
    t.push_back({p + "post_attention_layernorm.weight", "BF16", {kHidden}, TensorSpec::kOnes});
    quantized(p + "self_attn.q_proj", kHeads * hd, kHidden);
    quantized(p + "self_attn.k_proj", kKvHeads * hd, kHidden);
    quantized(p + "self_attn.v_proj", kKvHeads * hd, kHidden);
    quantized(p + "self_attn.o_proj", kHidden, kHeads * hd);
    for (const char* b : {"q_proj", "k_proj", "v_proj"})
      t.push_back(
          {p + "self_attn." + b + ".bias", "BF16", {(b[0] == 'q' ? kHeads : kKvHeads) * hd}, TensorSpec::kSmall});
    quantized(p + "mlp.gate_proj", kInter, kHidden);
    quantized(p + "mlp.up_proj", kInter, kHidden);
    quantized(p + "mlp.down_proj", kHidden, kInter);
  }
  return t;
}

// A minimal safetensors writer that generates data in chunks, so writing a
// 0.5 GB file needs no 0.5 GB buffer (and does not inflate the peak RSS).
void write_model(const std::string& dir, const Options& o) {
  auto tensors = model_tensors(o.bits, o.group_size);
  nlohmann::json header;
  header["__metadata__"] = {{"format", "mlx"}};
  uint64_t off = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes()}}};
    off += t.bytes();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream f(dir + "/model.safetensors", std::ios::binary);
  uint64_t n = h.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f.write(h.data(), h.size());
  uint64_t seed = 42;
  std::vector<uint16_t> buf(1 << 20);
  // Codes are uniform random; scale s and bias -s*(2^bits-1)/2 center the
  // weights on zero with a spread of about 1/sqrt(in).
  const float s = 2.0f / ((1 << o.bits) - 1) / std::sqrt(static_cast<float>(kHidden));
  for (const auto& t : tensors) {
    uint64_t left = t.bytes();
    while (left) {
      const uint64_t chunk = std::min<uint64_t>(left, buf.size() * 2);
      for (uint64_t i = 0; i < chunk / 2; i += 4) {
        uint64_t r = splitmix(seed);
        for (int k = 0; k < 4 && i + k < chunk / 2; ++k) {
          uint16_t v = static_cast<uint16_t>(r >> (16 * k));
          switch (t.fill) {
            case TensorSpec::kCodes:
              break;
            case TensorSpec::kScales:
              v = bf16(s * (0.75f + (v & 255) / 512.0f));
              break;
            case TensorSpec::kBiases:
              v = bf16(-s * ((1 << o.bits) - 1) / 2);
              break;
            case TensorSpec::kOnes:
              v = bf16(1.0f);
              break;
            case TensorSpec::kSmall:
              v = bf16(((v & 255) - 128) / 1024.0f);
              break;
          }
          buf[i + k] = v;
        }
      }
      f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(chunk));
      left -= chunk;
    }
  }
  nlohmann::json config = {{"architectures", {"Qwen2ForCausalLM"}},
                           {"model_type", "qwen2"},
                           {"hidden_size", kHidden},
                           {"intermediate_size", kInter},
                           {"num_hidden_layers", kLayers},
                           {"num_attention_heads", kHeads},
                           {"num_key_value_heads", kKvHeads},
                           {"max_position_embeddings", 32768},
                           {"rms_norm_eps", 1e-6},
                           {"rope_theta", 1000000.0},
                           {"tie_word_embeddings", true},
                           {"vocab_size", kVocab},
                           {"hidden_act", "silu"},
                           {"quantization", {{"group_size", o.group_size}, {"bits", o.bits}, {"mode", "affine"}}}};
  config["quantization_config"] = config["quantization"];
  std::ofstream(dir + "/config.json") << config.dump(2);
}

// Peak and current resident set in bytes.
std::pair<uint64_t, uint64_t> rss() { return {platform::peak_rss_bytes(), platform::current_rss_bytes()}; }

// Streaming read bandwidth: each thread sums its slice of a 1 GiB buffer.
double read_bandwidth(int threads) {
  const size_t n = (size_t{1} << 30) / 8;
  std::vector<uint64_t> buf(n);
  for (size_t i = 0; i < n; ++i) buf[i] = i;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    std::atomic<uint64_t> sink{0};
    auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        const size_t b = n * t / threads, e = n * (t + 1) / threads;
        uint64_t acc[8] = {};
        for (size_t i = b; i + 8 <= e; i += 8)
          for (int k = 0; k < 8; ++k) acc[k] += buf[i + k];
        uint64_t s = 0;
        for (uint64_t a : acc) s += a;
        sink += s;
      });
    for (auto& t : ts) t.join();
    best = std::max(best, static_cast<double>(n * 8) / seconds_since(t0));
  }
  return best;
}

uint64_t bytes_per_token(const Model& m) {
  uint64_t n = m.lm_head.weight.total_bytes();
  for (const Layer& l : m.layers)
    for (const Linear* p : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) n += p->weight.total_bytes();
  return n;
}

int run(const Options& o) {
  TempDir tmp("inference-bench");
  const std::string dir = o.dir.empty() ? tmp.path().string() : o.dir;
  const int threads = o.threads > 0 ? o.threads : core_count();
  auto t0 = Clock::now();
  uint64_t disk = 0;
  if (o.model.empty()) {
    fmt::print("model: Qwen2.5-0.5B shape, random weights, q{} gs{} (bf16 scales), {} threads, kernels {}\n", o.bits,
               o.group_size, threads, kernel_isa());
    write_model(dir, o);
    disk = std::filesystem::file_size(dir + "/model.safetensors");
    fmt::print("wrote {}/model.safetensors: {:.1f} MB in {:.1f} s\n", dir, disk / 1e6, seconds_since(t0));
  } else {
    fmt::print("model: {}, {} threads, kernels {}\n", o.model, threads, kernel_isa());
    const std::filesystem::path p = o.model;
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) disk += e.file_size();
    } else {
      disk = std::filesystem::file_size(p);
    }
  }

  (void)platform::reset_peak_rss();
  const uint64_t rss_before = rss().second;
  auto fs = make_real_file_system();
  t0 = Clock::now();
  auto model = load_model(*fs, o.model.empty() ? dir : o.model);
  if (!model.ok()) {
    fmt::print(stderr, "load failed: {}\n", model.error().to_string());
    return 1;
  }
  const double load_s = seconds_since(t0);
  ThreadPool pool(threads);
  Forward fw(*model, pool);
  std::vector<float> logits;
  uint64_t seed = 7;
  std::vector<int32_t> prompt(o.prompt);
  // Ordinary (non-special) ids of the vocabulary: Qwen's first 151643.
  const uint64_t ids = std::min<uint64_t>(151643, static_cast<uint64_t>(model->config.vocab_size));
  for (auto& t : prompt) t = static_cast<int32_t>(splitmix(seed) % ids);

  double prefill_best = 1e30, prefill_cpu = 0;
  for (int rep = 0; rep < 3; ++rep) {
    fw.reset();
    t0 = Clock::now();
    const double c0 = cpu_seconds();
    if (Status st = fw.run(prompt, false, logits); !st.ok()) {
      fmt::print(stderr, "prefill failed: {}\n", st.error().to_string());
      return 1;
    }
    const double wall = seconds_since(t0);
    if (wall < prefill_best) {
      prefill_best = wall;
      prefill_cpu = cpu_seconds() - c0;
    }
  }
  // Decode after the prompt; warm up a few tokens first.
  int32_t next = 0;
  auto argmax = [&] { return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()); };
  for (int i = 0; i < 4; ++i) {
    next = argmax();
    if (!fw.run(std::span(&next, 1), false, logits).ok()) return 1;
  }
  t0 = Clock::now();
  const double c0 = cpu_seconds();
  for (int i = 0; i < o.decode; ++i) {
    next = argmax();
    if (!fw.run(std::span(&next, 1), false, logits).ok()) return 1;
  }
  const double decode_s = seconds_since(t0) / o.decode;
  const double decode_cpu = (cpu_seconds() - c0) / o.decode;
  const auto [peak, cur] = rss();

  const double bw = read_bandwidth(threads);
  const double bw1 = threads > 1 ? read_bandwidth(1) : bw;
  const uint64_t per_token = bytes_per_token(*model);
  fmt::print("load: {:.3f} s ({}, {:.1f} M parameters)\n", load_s, model->weight_format, model->parameters / 1e6);
  fmt::print("prefill: {} tokens in {:.3f} s = {:.1f} tok/s (process CPU time {:.3f} s)\n", o.prompt, prefill_best,
             o.prompt / prefill_best, prefill_cpu);
  fmt::print("decode: {:.2f} ms/token = {:.1f} tok/s (at context {}..{}; process CPU time {:.2f} ms/token)\n",
             decode_s * 1e3, 1 / decode_s, o.prompt + 4, o.prompt + 4 + o.decode, decode_cpu * 1e3);
  fmt::print("memory: peak RSS {:.1f} MB (current {:.1f} MB, {:.1f} MB before load); model on disk {:.1f} MB\n",
             peak / 1e6, cur / 1e6, rss_before / 1e6, disk / 1e6);
  fmt::print("bandwidth: {:.1f} GB/s streaming read with {} threads, {:.1f} GB/s with 1\n", bw / 1e9, threads,
             bw1 / 1e9);
  fmt::print("bound: {:.1f} MB of weights per token -> {:.1f} tok/s at that bandwidth; decode reaches {:.0f}%\n",
             per_token / 1e6, bw / per_token, 100 * (1 / decode_s) / (bw / per_token));
  return 0;
}

}  // namespace
}  // namespace mb::inference

int main(int argc, char** argv) {
  mb::inference::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--bits")
      o.bits = std::atoi(next().c_str());
    else if (a == "--group-size")
      o.group_size = std::atoi(next().c_str());
    else if (a == "--threads")
      o.threads = std::atoi(next().c_str());
    else if (a == "--prompt")
      o.prompt = std::atoi(next().c_str());
    else if (a == "--decode")
      o.decode = std::atoi(next().c_str());
    else if (a == "--dir")
      o.dir = next();
    else if (a == "--model")
      o.model = next();
    else {
      std::fprintf(stderr,
                   "usage: inference_bench [--bits N] [--group-size N] [--threads N] [--prompt N] "
                   "[--decode N] [--dir DIR] [--model PATH]\n");
      return 2;
    }
  }
  return mb::inference::run(o);
}
