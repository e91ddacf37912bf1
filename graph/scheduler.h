#pragma once
// Scheduler: runs the nodes of a DAG on a pool of worker threads.
//
// A node starts as soon as all its dependencies have succeeded, up to `jobs`
// at a time (ninja's -j). A failed node's dependents are skipped. After the
// first failure no new node starts unless keep_going is set (-k), in which
// case everything not downstream of a failure still runs. `ready(i)` is asked
// just before node i would start; returning false skips it (the engine uses
// this when a target already failed a check). Order-only edges (`after`)
// make a node wait until another has finished, however it ended: its
// failure or skip does not skip the waiting node. Tasks run on worker
// threads; the callbacks must be thread-safe.
#include <functional>
#include <vector>

namespace mb {

enum class NodeState { kPending, kSucceeded, kFailed, kSkipped };

class Scheduler {
 public:
  Scheduler(int jobs, bool keep_going) : m_jobs(jobs < 1 ? 1 : jobs), m_keep_going(keep_going) {}

  // Runs nodes 0..deps.size()-1. deps[i] lists nodes that must succeed
  // first, after[i] (when given) nodes that must merely have finished.
  std::vector<NodeState> run(const std::vector<std::vector<int>>& deps, const std::function<bool(int)>& task,
                             const std::function<bool(int)>& ready = nullptr,
                             const std::vector<std::vector<int>>& after = {});

 private:
  int m_jobs;
  bool m_keep_going;
};

}  // namespace mb
