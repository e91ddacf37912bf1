// cache_bench: throughput of the cache's hot paths on the real disk.
//
//   (a) cold hashing: FileDigestCache::digest_of_tree over N large files with
//       an empty digest state, 1 thread and 2 threads (compare with
//       `openssl speed -evp sha256`). The files were just written, so the
//       page cache is warm: this measures hashing, not the disk.
//   (b) a cache hit: commit the files as a step output, then time lookup +
//       materialize (links, not copies), and the no-op re-materialize.
//   (c) the no-op check: load the digest state and stat every file, no
//       hashing.
//
// Environment: MB_BENCH_BYTES total bytes (default 8 GiB), MB_BENCH_FILE_BYTES
// bytes per file (default 1 GiB), MB_BENCH_DIR where to put the data (default
// a fresh directory under $TMPDIR or /tmp; always removed at the end).
// A plain harness rather than Google Benchmark: the phases share gigabytes of
// setup and run once each, in order.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "base/fs.h"
#include "base/reporter.h"
#include "cache/cache.h"
#include "cache/file_digests.h"

namespace mb {
namespace {

constexpr uint64_t kGib = uint64_t{1} << 30;

uint64_t env_bytes(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  double x = std::strtod(v, &end);
  std::string unit = end ? end : "";
  if (unit == "K" || unit == "k") x *= 1024;
  if (unit == "M" || unit == "m") x *= 1024.0 * 1024;
  if (unit == "G" || unit == "g") x *= double(kGib);
  return static_cast<uint64_t>(x);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of the whole process (all threads): on a shared machine the
// wall clock also measures the neighbours.
double cpu_seconds() {
  struct timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

double gib(uint64_t bytes) { return double(bytes) / double(kGib); }

// Pseudo-random bytes (xorshift64): incompressible, and fast to produce.
void fill(std::vector<uint64_t>& buf, uint64_t& state) {
  for (uint64_t& w : buf) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    w = state;
  }
}

Status write_files(FileSystem& fs, const fs::path& dir, uint64_t total, uint64_t per_file, std::vector<fs::path>* out) {
  std::vector<uint64_t> buf((4u << 20) / sizeof(uint64_t));
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (int i = 0; total > 0; ++i) {
    uint64_t size = std::min(total, per_file);
    fs::path path = dir / fmt::format("model-{:05}-of-NNNNN.safetensors", i);
    MB_ASSIGN(auto f, fs.open_for_write(path));
    for (uint64_t done = 0; done < size;) {
      fill(buf, state);
      size_t n = static_cast<size_t>(std::min<uint64_t>(size - done, buf.size() * sizeof(uint64_t)));
      MB_TRY(f->append({reinterpret_cast<const std::byte*>(buf.data()), n}));
      done += n;
    }
    MB_TRY(f->close());
    // An hour old: not racily clean, so the no-op check can trust it.
    struct timespec past[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
    ::utimensat(AT_FDCWD, path.c_str(), past, 0);
    out->push_back(path);
    total -= size;
  }
  return {};
}

Status run(FileSystem& fs, const fs::path& root, uint64_t total, uint64_t per_file) {
  NullReporter quiet;
  Cache cache(fs, root / "cache", quiet);
  MB_TRY(cache.init());
  Digest key = digest_string("cache_bench step");
  MB_ASSIGN(StagingDir staging, cache.begin(key));
  std::vector<fs::path> files;
  auto t0 = std::chrono::steady_clock::now();
  MB_TRY(write_files(fs, staging.dir(), total, per_file, &files));
  double s = seconds_since(t0);
  std::printf("setup      wrote %zu files, %.2f GiB in %.1f s (%.2f GiB/s)\n", files.size(), gib(total), s,
              gib(total) / s);

  fs::path state = root / "state" / "file-digests";
  for (int threads : {1, 2}) {
    FileDigestCache digests(fs, state, quiet);  // empty: every file is hashed
    t0 = std::chrono::steady_clock::now();
    double cpu0 = cpu_seconds();
    MB_ASSIGN(Digest d, digests.digest_of_tree(staging.dir(), threads));
    s = seconds_since(t0);
    double cpu = cpu_seconds() - cpu0;
    std::printf(
        "(a) cold   digest_of_tree, %d thread%s: %.2f GiB in %.2f s wall = %.0f MB/s; %.2f s cpu = %.0f MB/s per "
        "cpu-second  [%s]\n",
        threads, threads == 1 ? " " : "s", gib(total), s, double(total) / s / 1e6, cpu, double(total) / cpu / 1e6,
        d.short_hex().c_str());
    if (threads == 2) MB_TRY(digests.save());
  }

  std::vector<double> noop;
  for (int i = 0; i < 5; ++i) {
    t0 = std::chrono::steady_clock::now();
    FileDigestCache digests(fs, state, quiet);
    digests.load();
    MB_ASSIGN(Digest d, digests.digest_of_tree(staging.dir(), 2));
    noop.push_back(seconds_since(t0));
    (void)d;
    if (digests.stats().files_hashed != 0) {
      return make_error(Errc::kInternal, "", "the no-op check hashed {} files", digests.stats().files_hashed);
    }
  }
  std::sort(noop.begin(), noop.end());
  std::printf("(c) no-op  load state + stat %zu files (%.2f GiB), nothing hashed: median %.3f ms (min %.3f ms)\n",
              files.size(), gib(total), noop[noop.size() / 2] * 1e3, noop.front() * 1e3);

  t0 = std::chrono::steady_clock::now();
  MB_ASSIGN(ActionEntry entry, cache.commit(staging, "bench", {}));
  s = seconds_since(t0);
  std::printf("(b) commit hash + ingest %zu files: %.2f s (%.2f GiB/s, single thread)\n", entry.outputs.size(), s,
              gib(total) / s);

  fs::path dest = root / "build" / "model";
  t0 = std::chrono::steady_clock::now();
  MB_ASSIGN(auto hit, cache.lookup(key));
  if (!hit) return make_error(Errc::kInternal, "", "expected a cache hit");
  MB_ASSIGN(MaterializeResult m, cache.materialize(*hit, dest));
  s = seconds_since(t0);
  std::printf("(b) hit    lookup + materialize %llu files, %.2f GiB by %s: %.3f ms\n",
              static_cast<unsigned long long>(m.files), gib(m.bytes), link_kind_name(m.link_kind), s * 1e3);

  std::vector<double> again;
  for (int i = 0; i < 5; ++i) {
    t0 = std::chrono::steady_clock::now();
    MB_ASSIGN(auto hit2, cache.lookup(key));
    MB_ASSIGN(MaterializeResult m2, cache.materialize(*hit2, dest));
    again.push_back(seconds_since(t0));
    if (!m2.noop) return make_error(Errc::kInternal, "", "expected the no-op path");
  }
  std::sort(again.begin(), again.end());
  std::printf("(b) no-op  lookup + materialize (already in place): median %.3f ms\n", again[again.size() / 2] * 1e3);
  return {};
}

}  // namespace
}  // namespace mb

int main() {
  using namespace mb;
  uint64_t total = env_bytes("MB_BENCH_BYTES", 8 * kGib);
  uint64_t per_file = std::max<uint64_t>(1, env_bytes("MB_BENCH_FILE_BYTES", kGib));
  fs::path root;
  if (const char* dir = std::getenv("MB_BENCH_DIR"); dir != nullptr && *dir != '\0') {
    root = fs::path(dir) / fmt::format("mb-cache-bench-{}", ::getpid());
  } else {
    std::string tmpl = (fs::temp_directory_path() / "mb-cache-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return 1;
    root = tmpl;
  }
  auto fs = make_real_file_system();
  std::printf("cache_bench: %.2f GiB in files of %.2f GiB under %s\n", gib(total), gib(per_file), root.c_str());
  Status st = run(*fs, root, total, per_file);
  Status cleaned = fs->remove_all(root);  // never leave gigabytes behind
  if (!st.ok()) {
    std::fprintf(stderr, "cache_bench: %s\n", st.error().to_string().c_str());
    return 1;
  }
  if (!cleaned.ok()) std::fprintf(stderr, "cache_bench: cleanup: %s\n", cleaned.error().to_string().c_str());
  return 0;
}
