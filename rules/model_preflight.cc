#include "rules/model_preflight.h"

#include "inference/model_config.h"
#include "inference/tokenizer.h"
#include "tensors/hf_export.h"

namespace mb {
namespace {

Status check_engine_can_run(const FileSystem& fs, const fs::path& dir) {
  const fs::path config = dir / "config.json";
  MB_ASSIGN(std::string text, fs.read_file(config));
  MB_TRY(inference::parse_model_config(text, config.string()).status());
  return {};
}

Status check_tokenizer(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(inference::Tokenizer tokenizer, inference::Tokenizer::load(fs, dir / "tokenizer.json"));
  MB_TRY(inference::load_tokenizer_config(fs, dir, tokenizer).status());
  return {};
}

// config.json's model_type, which names the architecture of an export.
Result<std::string> read_model_type(const FileSystem& fs, const fs::path& dir, std::string_view what) {
  const fs::path path = dir / "config.json";
  MB_ASSIGN(std::string text, fs.read_file(path));
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object())
    return make_error(Errc::kInvalidInput, path.string(), "not a JSON object");
  const auto type = config.find("model_type");
  if (type == config.end() || !type->is_string())
    return make_error(Errc::kInvalidInput, path.string(), "model_type is missing: {} needs it", what);
  return type->get<std::string>();
}

// The architectures docs/formats/gguf.md maps (general.architecture).
Status check_gguf_architecture(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(std::string arch, read_model_type(fs, dir, "a GGUF export"));
  if (arch != "qwen2" && arch != "llama" && arch != "qwen3")
    return make_error(Errc::kInvalidInput, (dir / "config.json").string(),
                      "model_type '{}' has no GGUF mapping (a GGUF export handles qwen2, llama and qwen3)", arch);
  return {};
}

Status check_hf_architecture(const FileSystem& fs, const fs::path& dir) {
  MB_ASSIGN(std::string arch, read_model_type(fs, dir, "a Hugging Face export"));
  if (!hf_architecture_supported(arch))
    return make_error(Errc::kInvalidInput, (dir / "config.json").string(),
                      "model_type '{}' has no Hugging Face export (it handles qwen2, llama and qwen3)", arch);
  return {};
}

// The chat template and special tokens of a GGUF file come from here, so
// unlike the engine (which has defaults) the export needs the file.
Status check_tokenizer_config_exists(const FileSystem& fs, const fs::path& dir) {
  const fs::path path = dir / "tokenizer_config.json";
  auto st = fs.stat(path);
  if (!st.ok() || !st->is_regular)
    return make_error(Errc::kInvalidInput, path.string(),
                      "missing: a GGUF export takes the chat template and special tokens from it");
  return {};
}

// As bad input: the user's file is what is wrong, whatever the reader said.
Status as_bad_input(Status st) {
  if (st.ok() || st.error().code == Errc::kInvalidInput) return st;
  Error e = st.error();
  e.code = Errc::kInvalidInput;
  return e;
}

}  // namespace

Status preflight_model(const FileSystem& fs, const SourcePathFn& source_path, const std::string& base,
                       const ModelPreflight& options) {
  if (!options.needs_engine && !options.needs_tokenizer && !options.needs_gguf && !options.needs_hf) return {};
  MB_ASSIGN(fs::path base_dir, source_path(base));
  if (base_dir.empty()) return {};  // another target's output: its own preflight checks its base
  MB_ASSIGN(FileStat st, fs.stat(base_dir));
  if (!st.is_dir)
    return make_error(Errc::kInvalidInput, base_dir.string(), "a base model must be a directory (an mlx_lm model)");
  if (options.needs_engine) MB_TRY(as_bad_input(check_engine_can_run(fs, base_dir)));
  if (options.needs_gguf) {
    MB_TRY(as_bad_input(check_gguf_architecture(fs, base_dir)));
    MB_TRY(check_tokenizer_config_exists(fs, base_dir));
  }
  if (options.needs_hf) MB_TRY(as_bad_input(check_hf_architecture(fs, base_dir)));
  if (options.needs_engine || options.needs_tokenizer || options.needs_gguf)
    MB_TRY(as_bad_input(check_tokenizer(fs, base_dir)));
  return {};
}

}  // namespace mb
