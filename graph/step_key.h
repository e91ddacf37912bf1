#pragma once
// Step keys: the second phase of a build. A step's key is its action key
// (cache/action_key.h) over its rule's kind and algorithm version, its
// normalized parameters and the digest of every input, in the plan's order:
// a source's content digest (SourceDigests), an upstream step's OUTPUT digest
// (early cutoff: an upstream rebuild that yields identical bytes stops
// there), and the content of every tool the rule runs (Rule::tool_inputs,
// named "tool:PATH"). The same pass produces what the explain log records
// and the inputs the rule will read.
#include <functional>
#include <string>
#include <vector>

#include "cache/digest.h"
#include "graph/explain.h"
#include "graph/plan.h"
#include "graph/rule.h"
#include "graph/source_digests.h"

namespace mb {

class FileDigestCache;

// An upstream step's output as a downstream step sees it.
struct UpstreamOutput {
  fs::path view;      // a directory holding its files
  Digest digest;      // its output digest
  std::string label;  // the step's label, for explanations
};

struct KeyedStep {
  Digest key;
  std::vector<StepInput> inputs;  // what the rule reads, by role
  ExplainRecord record;           // what the explain log remembers
};

// REQUIRES: every step input's producer has succeeded (upstream(i) is valid).
Result<KeyedStep> key_step(const Step& step, const Rule& rule, SourceDigests& sources, FileDigestCache& tools,
                           const fs::path& work_dir, const std::function<UpstreamOutput(int step)>& upstream);

}  // namespace mb
