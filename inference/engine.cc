// Engine::load and the engine itself: a Model with its runtime adapters, a
// Tokenizer, a thread pool, one Forward session and a Generator over it.
#include "inference/engine.h"

#include <chrono>
#include <optional>
#include <set>

#include "inference/chat_template.h"
#include "inference/forward.h"
#include "inference/generator.h"
#include "inference/gguf_model.h"
#include "inference/gguf_tokenizer.h"
#include "inference/lora.h"
#include "inference/model.h"
#include "inference/tokenizer.h"

namespace mb::inference {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The default system message of the model's ChatML template, read off the
// template text (Instruct and base Qwen2.5 templates differ only there).
// `where`: the file the template came from.
Result<std::string> chatml_default_system(const std::string& chat_template, const fs::path& where) {
  if (chat_template.empty() || chat_template.find("<|im_start|>") == std::string::npos)
    return Error{Errc::kUnsupported, where.string(),
                 "the model's chat template is not ChatML; only ChatML (Qwen2.5) prompts can be rendered"};
  if (chat_template.find(kQwen25DefaultSystem) != std::string::npos) return std::string(kQwen25DefaultSystem);
  if (chat_template.find("You are a helpful assistant.") != std::string::npos)
    return std::string("You are a helpful assistant.");
  return std::string();
}

class EngineImpl final : public Engine {
 public:
  EngineImpl(Model model, Tokenizer tokenizer, std::set<int32_t> stop_ids, Result<std::string> default_system,
             int threads)
      : m_model(std::move(model)),
        m_tokenizer(std::move(tokenizer)),
        m_default_system(std::move(default_system)),
        m_pool(threads),
        m_forward(m_model, m_pool),
        m_generator(m_forward, std::move(stop_ids),
                    [this](std::span<const int32_t> ids) { return m_tokenizer.decode(ids, /*skip_special=*/true); }) {
    const ModelConfig& c = m_model.config;
    m_summary.architecture = architecture_name(c.arch);
    m_summary.parameters = m_model.parameters;
    m_summary.layers = c.num_layers;
    m_summary.hidden = c.hidden_size;
    m_summary.vocab = c.vocab_size;
    m_summary.weight_format = m_model.weight_format;
    m_summary.weight_bytes = m_model.weight_bytes;
  }

  void set_load_seconds(double s) { m_load_seconds = s; }

  const ModelSummary& summary() const override { return m_summary; }
  double load_seconds() const override { return m_load_seconds; }

  Result<std::string> render_chat(const std::vector<ChatMessage>& messages,
                                  const nlohmann::ordered_json& tools) const override {
    if (!m_default_system.ok()) return m_default_system.error();
    return render_chatml(messages, tools, /*add_generation_prompt=*/true, m_default_system.value());
  }

  Result<Generation> generate(const std::vector<ChatMessage>& messages, const nlohmann::ordered_json& tools,
                              const GenerateOptions& options) override {
    const auto t0 = Clock::now();
    MB_ASSIGN(std::string prompt, render_chat(messages, tools));
    return generate_impl(prompt, options, t0);
  }

  Result<Generation> generate_from_text(std::string_view prompt, const GenerateOptions& options) override {
    return generate_impl(prompt, options, Clock::now());
  }

  Result<std::vector<int32_t>> tokenize(std::string_view text) const override { return m_tokenizer.encode(text); }

  std::string detokenize(std::span<const int32_t> tokens) const override { return m_tokenizer.decode(tokens); }

  Result<std::vector<float>> logits(std::span<const int32_t> tokens) override {
    return m_generator.logits(tokens, false);
  }
  Result<std::vector<float>> all_logits(std::span<const int32_t> tokens) override {
    return m_generator.logits(tokens, true);
  }

 private:
  Result<Generation> generate_impl(std::string_view prompt, const GenerateOptions& options, Clock::time_point t0) {
    MB_ASSIGN(std::vector<int32_t> ids, m_tokenizer.encode(prompt));
    const double before_prefill = seconds_since(t0);
    MB_ASSIGN(Generation g, m_generator.generate(ids, options));
    // Time to first token counts rendering and tokenization too.
    g.time_to_first_token_seconds += before_prefill;
    return g;
  }

  Model m_model;
  Tokenizer m_tokenizer;
  Result<std::string> m_default_system;
  ThreadPool m_pool;
  Forward m_forward;
  Generator m_generator;
  ModelSummary m_summary;
  double m_load_seconds = 0;
};

}  // namespace

namespace {

// What a model's files say about tokens, wherever they came from.
struct LoadedTokenizer {
  Tokenizer tokenizer;
  TokenizerConfig config;
  std::vector<int32_t> eos;
  fs::path where;  // the file the tokenizer came from, for messages
};

Result<LoadedTokenizer> load_dir_tokenizer(const FileSystem& fs, const fs::path& model_dir) {
  MB_ASSIGN(Tokenizer tokenizer, Tokenizer::load(fs, model_dir / "tokenizer.json"));
  MB_ASSIGN(TokenizerConfig tok_config, load_tokenizer_config(fs, model_dir, tokenizer));
  MB_ASSIGN(std::vector<int32_t> eos, load_end_of_generation_ids(fs, model_dir, tokenizer));
  return LoadedTokenizer{std::move(tokenizer), std::move(tok_config), std::move(eos), model_dir / "tokenizer.json"};
}

// A .gguf file: weights, tokenizer and chat template all from the one file.
Result<std::pair<Model, LoadedTokenizer>> load_gguf(const FileSystem& fs, const fs::path& file) {
  MB_ASSIGN(GgufFile opened, GgufFile::open(fs, file));
  auto shared = std::make_shared<const GgufFile>(std::move(opened));
  MB_ASSIGN(GgufTokenizer tok, gguf_tokenizer(shared->metadata(), file.string()));
  MB_ASSIGN(Model model, load_gguf_model(shared));
  LoadedTokenizer t{std::move(tok.tokenizer), std::move(tok.config), std::move(tok.end_of_generation), file};
  return std::pair<Model, LoadedTokenizer>(std::move(model), std::move(t));
}

}  // namespace

Result<std::unique_ptr<Engine>> Engine::load(const FileSystem& fs, const fs::path& model_dir,
                                             const LoadOptions& options) {
  const auto t0 = Clock::now();
  MB_ASSIGN(std::optional<fs::path> gguf, find_gguf_model(fs, model_dir));
  std::optional<Model> loaded;
  std::optional<LoadedTokenizer> tok;
  if (gguf) {
    MB_ASSIGN(auto both, load_gguf(fs, *gguf));
    loaded.emplace(std::move(both.first));
    tok.emplace(std::move(both.second));
  } else {
    MB_ASSIGN(Model m, load_model(fs, model_dir));
    loaded.emplace(std::move(m));
    MB_ASSIGN(LoadedTokenizer t, load_dir_tokenizer(fs, model_dir));
    tok.emplace(std::move(t));
  }
  Model& model = *loaded;
  for (const fs::path& a : options.adapters) {
    MB_ASSIGN(Adapter adapter, load_adapter(fs, a));
    MB_TRY(attach_adapter(model, std::make_shared<const Adapter>(std::move(adapter))));
  }
  if (tok->tokenizer.vocab_size() > model.config.vocab_size)
    return Error{Errc::kInvalidInput, tok->where.string(),
                 fmt::format("tokenizer has {} tokens but the model's vocabulary is {}", tok->tokenizer.vocab_size(),
                             model.config.vocab_size)};
  std::set<int32_t> stop_ids(tok->eos.begin(), tok->eos.end());
  auto default_system =
      chatml_default_system(tok->config.chat_template, gguf ? fs::path(gguf->string() + ": tokenizer.chat_template")
                                                            : model_dir / "tokenizer_config.json");
  auto engine = std::make_unique<EngineImpl>(std::move(model), std::move(tok->tokenizer), std::move(stop_ids),
                                             std::move(default_system), options.threads);
  engine->set_load_seconds(seconds_since(t0));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace mb::inference
