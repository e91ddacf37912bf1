#include "graph/source_digests.h"

#include <algorithm>

#include "base/parallel.h"
#include "cache/file_digests.h"

namespace mb {

SourceDigests::SourceDigests(const Recipe& recipe, FileDigestCache& digests, GitResolver git, int threads)
    : m_recipe(recipe), m_digests(digests), m_git(std::move(git)), m_threads(resolve_threads(threads)) {}

void SourceDigests::hash_all(const std::vector<std::string>& names) {
  if (names.size() < 2) return;  // one source hashes its files in parallel itself
  const int workers = std::min<int>(m_threads, static_cast<int>(names.size()));
  const int per_source = std::max(1, m_threads / workers);
  (void)parallel_for(static_cast<int64_t>(names.size()), workers, [&](int64_t i) -> Status {
    (void)compute(names[static_cast<size_t>(i)], per_source);  // errors wait for the step that reads it
    return {};
  });
}

Result<SourceDigests::Source> SourceDigests::get(const std::string& name) { return compute(name, m_threads); }

Result<fs::path> SourceDigests::path(const std::string& name) const {
  const SourceDecl* src = m_recipe.find_source(name);
  if (!src) return make_error(Errc::kInternal, name, "'{}' is not a source", name);
  if (!src->git) return src->path;
  if (!m_git) return make_error(Errc::kUnsupported, src->loc.str(), "git-pinned sources are not supported here");
  return m_git(*src);
}

Result<SourceDigests::Source> SourceDigests::compute(const std::string& name, int threads) {
  {
    std::unique_lock<std::mutex> lock(m_mu);
    m_done.wait(lock, [&] { return !m_in_flight.count(name); });
    if (auto it = m_known.find(name); it != m_known.end()) return it->second;
    m_in_flight.insert(name);
  }
  auto hashed = [&]() -> Result<Source> {
    MB_ASSIGN(fs::path p, path(name));
    MB_ASSIGN(Digest d, m_digests.digest_of_tree(p, threads));
    return Source{p, d};
  }();
  std::lock_guard<std::mutex> lock(m_mu);
  m_in_flight.erase(name);
  m_done.notify_all();
  if (!hashed.ok()) return hashed;
  return m_known.emplace(name, *hashed).first->second;
}

std::map<std::string, Digest> SourceDigests::files(const std::string& name) {
  fs::path root;
  {
    std::lock_guard<std::mutex> lock(m_mu);
    auto it = m_known.find(name);
    if (it == m_known.end()) return {};
    root = it->second.path;
  }
  std::map<std::string, Digest> files;
  auto st = m_digests.fs().stat(root);
  if (!st.ok()) return files;
  if (!st->is_dir) {
    if (auto d = m_digests.digest_of(root); d.ok()) files[root.filename().string()] = *d;
    return files;
  }
  auto entries = m_digests.tree_entries(root, 1);  // stat-only: the tree was just hashed
  if (entries.ok())
    for (const auto& e : *entries) files[e.path] = e.digest;
  return files;
}

}  // namespace mb
