// `modelbuild inspect PATH [--tensors] [--json]`: what is in a model or
// adapter directory — tensors, quantization, parameters, size on disk. A thin
// front on tensors/inspect.h; reads headers only, so it is instant even on a
// large model.
#include <cstdio>

#include "cli/commands.h"
#include "tensors/inspect.h"

namespace mb::cli {

int inspect_command(const std::vector<std::string>& args) {
  CLI::App app("Show a model's or adapter's tensors, quantization, parameter count and size.", "inspect");
  std::string path;
  bool list_tensors = false;
  bool json = false;
  app.add_option("path", path, "a model directory (config.json), adapter directory (adapter_config.json) or .gguf file")
      ->required();
  app.add_flag("--tensors", list_tensors, "list every tensor with its dtype, shape and quantization");
  app.add_flag("--json", json, "print the inspection as JSON (always lists the tensors)");
  if (int rc = parse_args(app, args); rc >= 0) return rc;

  auto fs = make_real_file_system();
  auto in = inspect(*fs, fs::absolute(path));
  if (!in.ok()) return report_error(in.error());
  const std::string text = json ? in->to_json().dump(2) + "\n" : render_inspection(*in, list_tensors);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

}  // namespace mb::cli
