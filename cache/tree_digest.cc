// Tree digest encoding; docs/cache-format.md ("Tree digests") is normative.
#include "cache/tree_digest.h"

#include <algorithm>

namespace mb {
namespace {

constexpr char kTreeMagic[] = "MBTR";
constexpr uint32_t kTreeFormat = 1;

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

Digest tree_digest(const std::vector<TreeEntry>& entries) {
  std::vector<const TreeEntry*> sorted;
  sorted.reserve(entries.size());
  for (const TreeEntry& e : entries) sorted.push_back(&e);
  std::sort(sorted.begin(), sorted.end(), [](const TreeEntry* a, const TreeEntry* b) { return a->path < b->path; });
  Hasher h;
  std::string buf(kTreeMagic, 4);
  put_le(buf, kTreeFormat, 4);
  put_le(buf, sorted.size(), 8);
  h.update(buf);
  for (const TreeEntry* e : sorted) {
    buf.clear();
    put_le(buf, e->path.size(), 8);
    buf += e->path;
    buf.append(reinterpret_cast<const char*>(e->digest.bytes.data()), e->digest.bytes.size());
    put_le(buf, e->size, 8);
    h.update(buf);
  }
  return h.finish();
}

bool is_valid_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace mb
