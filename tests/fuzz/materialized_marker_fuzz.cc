// libFuzzer target: a `.modelbuild-materialized` marker (docs/cache-format.md,
// "Materialized outputs"), the JSON that lets a no-op build prove with stat()
// alone that build/TARGET already holds a step's outputs. The bytes are the
// marker of a directory that holds two copied outputs with fixed
// fingerprints, in an in-memory filesystem, so a seed that records those
// fingerprints reaches the "already materialized" answer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/fs_test_support.h"
#include "cache/content_store.h"
#include "cache/digest.h"
#include "cache/materialize.h"
#include "cache/tree_digest.h"

namespace {

constexpr std::string_view kA = "weights", kB = "nested config";

mb::OutputFile output(mb::MemoryFileSystem& fs, const std::string& path, std::string_view bytes) {
  const mb::fs::path p = mb::fs::path("/out") / path;
  fs.add_file(p, bytes);
  // Fixed fingerprints (inodes are handed out in creation order), so the
  // committed seed matches them.
  (void)fs.set_mtime(p, 1'000'000'000);
  (void)fs.set_ctime(p, 2'000'000'000);
  return mb::OutputFile{path, mb::digest_string(bytes), bytes.size(), false, 0};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mb::MemoryFileSystem fs;
  mb::ContentStore cas(fs, "/cache");
  mb::ActionEntry entry;
  entry.kind = "fuzz";
  entry.outputs.push_back(output(fs, "a.bin", kA));
  entry.outputs.push_back(output(fs, "sub/b.json", kB));
  fs.add_file(mb::fs::path("/out") / std::string(mb::kMaterializedMarker),
              std::string_view(reinterpret_cast<const char*>(data), size));
  mb::LinkKind worst = mb::LinkKind::kReflink;
  (void)mb::is_materialized(fs, cas, entry, "/out", &worst);
  return 0;
}
