// `modelbuild diff A B [--all] [--json] [-j N]`: two models compared tensor by
// tensor on their dequantized values (a byte diff of weights tells a user
// nothing); either side may be a GGUF file. A thin front on
// tensors/inspect.h. Exit status follows diff(1): 0 when the models are the
// same, 1 when they differ, 2 on bad input.
#include <cstdio>

#include "cli/commands.h"
#include "tensors/inspect.h"

namespace mb::cli {

int diff_command(const std::vector<std::string>& args) {
  CLI::App app("Compare two models tensor by tensor: which differ, max |Δ| and relative error.", "diff");
  std::string a, b;
  bool all = false;
  bool json = false;
  int jobs = 0;
  app.add_option("a", a, "the first model: a model directory, a .gguf file or a GGUF target's directory")->required();
  app.add_option("b", b, "the second model, likewise")->required();
  app.add_flag("--all", all, "list identical tensors too");
  app.add_flag("--json", json, "print the comparison as JSON");
  app.add_option("-j,--jobs", jobs, "threads (default: number of cores)")->check(CLI::NonNegativeNumber);
  if (int rc = parse_args(app, args); rc >= 0) return rc;

  auto fs = make_real_file_system();
  auto d = diff_models(*fs, fs::absolute(a), fs::absolute(b), jobs);
  if (!d.ok()) return report_error(d.error());
  const std::string text = json ? d->to_json().dump(2) + "\n" : render_diff(*d, all);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return d->same() ? 0 : 1;
}

}  // namespace mb::cli
