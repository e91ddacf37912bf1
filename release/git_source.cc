#include "release/git_source.h"

#include <git2.h>

#include <memory>
#include <set>

#include "graph/builder.h"
#include "graph/plan.h"
#include "release/git_util.h"

namespace mb {
namespace {

// Writes the tree `tree` into directory `dir` (which exists).
Status write_tree(FileSystem& fs, git_repository* repo, const git_tree* tree, const fs::path& dir,
                  const std::string& where) {
  size_t n = git_tree_entrycount(tree);
  for (size_t i = 0; i < n; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    const std::string name = git_tree_entry_name(e);
    const fs::path out = dir / name;
    switch (git_tree_entry_filemode(e)) {
      case GIT_FILEMODE_TREE: {
        git_object* obj = nullptr;
        if (git_tree_entry_to_object(&obj, repo, e) != 0) return git_failure(where, "cannot read tree " + name);
        GitPtr<git_object, git_object_free> sub(obj);
        MB_TRY(fs.create_dirs(out));
        MB_TRY(write_tree(fs, repo, reinterpret_cast<const git_tree*>(obj), out, where));
        break;
      }
      case GIT_FILEMODE_BLOB:
      case GIT_FILEMODE_BLOB_EXECUTABLE: {
        git_blob* blob = nullptr;
        if (git_blob_lookup(&blob, repo, git_tree_entry_id(e)) != 0)
          return git_failure(where, "cannot read blob " + name);
        GitPtr<git_blob, git_blob_free> owned(blob);
        MB_TRY(write_blob(fs, blob, out, git_tree_entry_filemode(e) == GIT_FILEMODE_BLOB_EXECUTABLE));
        break;
      }
      default:
        // Symlinks could point outside the pinned tree and submodules are
        // other repositories: neither is content we can pin.
        return make_error(Errc::kInvalidInput, where, "'{}' is a symlink or submodule; git sources hold files only",
                          out.string());
    }
  }
  return {};
}

}  // namespace

Result<ResolvedGit> resolve_git_source(FileSystem& fs, const SourceDecl& source, const fs::path& cache_dir) {
  const GitPin& pin = *source.git;
  const std::string where = fmt::format("{}: source '{}'", source.loc.str(), source.name);
  MB_ASSIGN(auto repo, open_repository(source.path, where));

  git_object* obj = nullptr;
  if (git_revparse_single(&obj, repo.get(), pin.rev.c_str()) != 0)
    return make_error(Errc::kInvalidInput, where, "unknown revision '{}' in repository {}", pin.rev,
                      source.path.string());
  GitPtr<git_object, git_object_free> rev_obj(obj);
  git_object* peeled = nullptr;
  if (git_object_peel(&peeled, rev_obj.get(), GIT_OBJECT_COMMIT) != 0)
    return make_error(Errc::kInvalidInput, where, "revision '{}' does not name a commit", pin.rev);
  GitPtr<git_object, git_object_free> commit_obj(peeled);
  const auto* commit = reinterpret_cast<const git_commit*>(commit_obj.get());
  ResolvedGit out;
  out.commit = oid_hex(git_commit_id(commit));

  git_tree* root = nullptr;
  if (git_commit_tree(&root, commit) != 0) return git_failure(where, "cannot read the tree of commit " + out.commit);
  GitPtr<git_tree, git_tree_free> root_tree(root);

  // The object at `path`: the whole tree for "" or ".".
  std::string path = pin.path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  bool is_tree = true;
  git_oid oid = *git_tree_id(root);
  std::string file_name;
  if (!path.empty() && path != ".") {
    git_tree_entry* entry = nullptr;
    if (git_tree_entry_bypath(&entry, root, path.c_str()) != 0)
      return make_error(Errc::kInvalidInput, where, "path '{}' is not in commit {} (revision '{}')", pin.path,
                        out.commit.substr(0, 12), pin.rev);
    GitPtr<git_tree_entry, git_tree_entry_free> owned(entry);
    git_filemode_t mode = git_tree_entry_filemode(entry);
    if (mode != GIT_FILEMODE_TREE && mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
      return make_error(Errc::kInvalidInput, where, "path '{}' is a symlink or submodule at revision '{}'", pin.path,
                        pin.rev);
    is_tree = mode == GIT_FILEMODE_TREE;
    oid = *git_tree_entry_id(entry);
    file_name = git_tree_entry_name(entry);
  }
  out.oid = oid_hex(&oid);

  // Content-addressed by object id: an existing directory is complete,
  // because it only ever appears by rename.
  const fs::path dir = cache_dir / "git" / out.oid;
  out.path = is_tree ? dir : dir / file_name;
  if (fs.stat(dir).ok()) return out;

  MB_TRY(fs.create_dirs(dir.parent_path()));
  const fs::path tmp = temp_path_for(dir);
  MB_TRY(fs.create_dirs(tmp));
  Status written;
  if (is_tree) {
    git_tree* tree = nullptr;
    if (git_tree_lookup(&tree, repo.get(), &oid) != 0) {
      written = git_failure(where, "cannot read tree " + out.oid);
    } else {
      GitPtr<git_tree, git_tree_free> owned(tree);
      written = write_tree(fs, repo.get(), tree, tmp, where);
    }
  } else {
    git_blob* blob = nullptr;
    if (git_blob_lookup(&blob, repo.get(), &oid) != 0) {
      written = git_failure(where, "cannot read blob " + out.oid);
    } else {
      GitPtr<git_blob, git_blob_free> owned(blob);
      written = write_blob(fs, blob, tmp / file_name, false);
    }
  }
  if (written.ok()) written = fs.rename(tmp, dir);
  if (!written.ok()) {
    (void)fs.remove_all(tmp);
    // Another process may have published the same object meanwhile.
    if (fs.stat(dir).ok()) return out;
    return written.error();
  }
  return out;
}

Result<std::map<std::string, ResolvedGit>> install_git_sources(FileSystem& fs, const Recipe& recipe, const Plan& plan,
                                                               Builder& builder) {
  std::set<std::string> names;
  auto note = [&](const InputRef& in) {
    if (!in.is_source()) return;
    const SourceDecl* src = recipe.find_source(in.source);
    if (src && src->git) names.insert(in.source);
  };
  for (const auto& step : plan.steps)
    for (const auto& in : step.inputs) note(in);
  for (const auto& [name, tp] : plan.targets) {
    if (tp.artifact) note(*tp.artifact);
    for (const auto& in : tp.runtime_inputs) note(in);
  }
  std::map<std::string, ResolvedGit> resolved;
  for (const auto& name : names) {
    MB_ASSIGN(resolved[name], resolve_git_source(fs, *recipe.find_source(name), builder.options().cache_dir));
  }
  auto paths = std::make_shared<std::map<std::string, fs::path>>();
  for (const auto& [name, r] : resolved) (*paths)[name] = r.path;
  builder.git_resolver = [paths](const SourceDecl& src) -> Result<fs::path> {
    auto it = paths->find(src.name);
    if (it == paths->end())
      return make_error(Errc::kInternal, src.loc.str(), "git source '{}' was not resolved before the build", src.name);
    return it->second;
  };
  return resolved;
}

}  // namespace mb
