#include "rules/model_preflight.h"

#include "inference/model_config.h"
#include "inference/tokenizer.h"

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
  if (!options.needs_engine && !options.needs_tokenizer) return {};
  MB_ASSIGN(fs::path base_dir, source_path(base));
  if (base_dir.empty()) return {};  // another target's output: its own preflight checks its base
  MB_ASSIGN(FileStat st, fs.stat(base_dir));
  if (!st.is_dir)
    return make_error(Errc::kInvalidInput, base_dir.string(), "a base model must be a directory (an mlx_lm model)");
  if (options.needs_engine) MB_TRY(as_bad_input(check_engine_can_run(fs, base_dir)));
  MB_TRY(as_bad_input(check_tokenizer(fs, base_dir)));
  return {};
}

}  // namespace mb
