#include "release/provenance.h"

#include <algorithm>

#include "release/git_util.h"

namespace mb {
namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

nlohmann::json Provenance::to_json() const {
  if (!in_repository) return {{"repository", false}};
  return {{"repository", true}, {"commit", commit}, {"dirty", dirty}};
}

Result<Provenance> read_provenance(const fs::path& project_dir) {
  Provenance p;
  MB_ASSIGN(RepoPtr repo, discover_repository(project_dir));
  if (!repo) return p;
  const char* workdir = git_repository_workdir(repo.get());
  if (!workdir) return p;  // a bare repository holds no recipe
  p.in_repository = true;
  p.repository = fs::path(workdir);

  git_oid head;
  if (git_reference_name_to_id(&head, repo.get(), "HEAD") == 0) p.commit = oid_hex(&head);

  // The project's own output directories, relative to the repository root.
  std::error_code ec;
  fs::path rel = fs::relative(fs::weakly_canonical(project_dir, ec), fs::weakly_canonical(p.repository, ec), ec);
  std::string prefix = (rel.empty() || rel == ".") ? "" : rel.generic_string() + "/";
  const std::string skip_build = prefix + "build/", skip_state = prefix + ".modelbuild/";

  git_status_options opts;
  git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS;
  git_status_list* list = nullptr;
  if (git_status_list_new(&list, repo.get(), &opts) != 0)
    return git_failure(p.repository.string(), "cannot read the working tree status");
  GitPtr<git_status_list, git_status_list_free> owned(list);
  for (size_t i = 0, n = git_status_list_entrycount(list); i < n; ++i) {
    const git_status_entry* e = git_status_byindex(list, i);
    if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED)) continue;
    const git_diff_delta* d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
    std::string path = d ? (d->new_file.path ? d->new_file.path : d->old_file.path) : "";
    if (starts_with(path, skip_build) || starts_with(path, skip_state)) continue;
    p.dirty_paths.push_back(path);
  }
  std::sort(p.dirty_paths.begin(), p.dirty_paths.end());
  p.dirty = !p.dirty_paths.empty();
  return p;
}

}  // namespace mb
