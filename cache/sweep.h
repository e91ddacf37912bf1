#pragma once
// Sweeping the temporaries a build leaves when it dies.
//
// A process killed mid-build leaves what it was writing: staging directories
// (<cache>/tmp/<key>.<pid>.<n>), half-linked views and build outputs
// (<cache>/views/<digest>.tmp.<pid>.<n>, <build>/TARGET.tmp.<pid>.<n>, whose
// hard links keep blobs' bytes on disk after gc evicts them) and the temp
// files of atomic writes (*.tmp.<pid>.<n> next to entries, state and
// reports). None of it is ever visible as a result: it only costs disk.
// Every name carries its owner's pid; a build sweeps, when it starts, what
// belongs to processes that are gone. Where a lock guards the thing (the
// step lock of a staging directory, the view lock, the target lock) the lock
// must also be free, so a live builder whose pid we cannot see (another pid
// namespace sharing the cache) keeps its staging directory.
//
// Unlike gc() this never evicts anything and never waits: it is safe with
// concurrent live builders, whose pids are alive.
#include <cstdint>
#include <string>

#include "base/fs.h"

namespace mb {

class Cache;

enum class SweepOwner {
  kDead,  // processes that no longer exist (a build's start)
  kSelf,  // this process (after an interrupt; no lock is asked for)
};

// The number of directories and files removed. A read-only cache is left
// alone; build_dir may be empty (no build directory to sweep).
uint64_t sweep_temporaries(Cache& cache, const fs::path& build_dir, SweepOwner owner);

// "<base>.tmp.<pid>.<n>" (temp_path_for): base and pid, or false.
bool parse_temp_name(const std::string& name, std::string* base, long* pid);

// Whether a process with this pid exists (it may be another one, reusing it).
bool pid_alive(long pid);

}  // namespace mb
