#include "graph/step_execution.h"

#include "base/parallel.h"
#include "cache/cache.h"

namespace mb {

Result<ActionEntry> execute_in_staging(Cache& cache, FileSystem& fs, Reporter& reporter, const StepRun& run) {
  MB_ASSIGN(StagingDir staging, cache.begin(run.key));
  StepContext ctx{fs,           reporter,    run.step.label, run.step.params, run.inputs, staging.dir(),
                  run.work_dir, run.threads, run.cancelled};
  Status st = catch_all(run.step.label, [&] { return run.rule.run(ctx); });
  if (!st.ok()) {
    (void)cache.abandon(staging);
    Error e = st.error();
    if (e.where.empty()) e.where = run.step.label;
    return e;
  }
  return cache.commit(staging, run.step.kind, ctx.report);
}

}  // namespace mb
