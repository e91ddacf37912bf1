#include "graph/step_key.h"

#include "cache/action_key.h"
#include "cache/file_digests.h"

namespace mb {

Result<KeyedStep> key_step(const Step& step, const Rule& rule, SourceDigests& sources, FileDigestCache& tools,
                           const fs::path& work_dir, const std::function<UpstreamOutput(int step)>& upstream) {
  KeyedStep k;
  k.record.kind = step.kind;
  k.record.algorithm_version = rule.algorithm_version();
  k.record.params = step.params;
  ActionKeySpec spec{step.kind, rule.algorithm_version(), step.params, {}};
  auto add = [&](ExplainInput e, fs::path path) {
    k.inputs.push_back({e.role, std::move(path), e.digest});
    spec.inputs.push_back({e.role, e.digest});
    k.record.inputs.push_back(std::move(e));
  };
  for (const InputRef& in : step.inputs) {
    if (in.is_source()) {
      MB_ASSIGN(SourceDigests::Source src, sources.get(in.source));
      add({in.role, src.digest, "source " + in.source, {}}, src.path);
    } else {
      const UpstreamOutput up = upstream(in.step);
      add({in.role, up.digest, "step " + up.label, {}}, up.view);
    }
  }
  MB_ASSIGN(std::vector<fs::path> tool_paths, rule.tool_inputs(step.params, work_dir));
  for (const fs::path& tool : tool_paths) {
    MB_ASSIGN(Digest d, tools.digest_of(tool));
    add({"tool:" + tool.string(), d, "tool " + tool.string(), {}}, tool);
  }
  k.key = action_key(spec);
  k.record.key = k.key;
  return k;
}

}  // namespace mb
