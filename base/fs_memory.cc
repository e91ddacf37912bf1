// MemoryFileSystem: an in-memory tree of inodes. Directory entries point at
// shared inodes, so hard links share content; file content is a shared
// string copied on write, so a mapping or the "last synced" snapshot stays
// stable while the file changes.
#include <chrono>
#include <initializer_list>

#include "base/fs_test_support.h"

namespace mb {
namespace {

enum Kind { kFileKind = 0, kDirKind = 1, kSymlinkKind = 2 };
constexpr int kMaxSymlinkDepth = 40;

fs::path normalize(const fs::path& path) {
  fs::path p = path.is_absolute() ? path : fs::path("/") / path;
  return p.lexically_normal();
}

std::vector<std::string> components(const fs::path& normalized) {
  std::vector<std::string> out;
  for (const auto& part : normalized) {
    std::string s = part.string();
    if (s.empty() || s == "/" || s == ".") continue;
    out.push_back(std::move(s));
  }
  return out;
}

Error not_found(const fs::path& path, const char* what) {
  return make_error(Errc::kNotFound, path.string(), "{}: No such file or directory", what);
}
Error io_error(const fs::path& path, const char* what, const char* why) {
  return make_error(Errc::kIo, path.string(), "{}: {}", what, why);
}

class SharedMapping : public ReadOnlyMapping {
 public:
  explicit SharedMapping(std::shared_ptr<std::string> data) : m_data(std::move(data)) {}
  std::span<const std::byte> bytes() const override { return as_bytes(*m_data); }

 private:
  std::shared_ptr<std::string> m_data;
};

}  // namespace

struct MemoryFileSystem::Inode {
  int kind = kFileKind;
  uint64_t ino = 0;
  uint32_t mode = 0644;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t nlink = 0;
  std::shared_ptr<std::string> data = std::make_shared<std::string>();
  std::shared_ptr<std::string> synced;  // content at the last sync(); null: never synced
  std::map<std::string, std::shared_ptr<Inode>> children;
  std::string target;  // symlinks

  // Copy-on-write: never mutate bytes a mapping or the synced snapshot sees.
  std::string& writable_data() {
    if (data.use_count() > 1) data = std::make_shared<std::string>(*data);
    return *data;
  }
};

struct MemoryFileSystem::Resolved {
  std::shared_ptr<Inode> parent;  // null only for "/"
  std::string name;
  std::shared_ptr<Inode> node;  // null when the last component is missing
};

class MemoryFileSystem::Writer : public WritableFile {
 public:
  Writer(MemoryFileSystem* fs, std::shared_ptr<Inode> inode, fs::path path)
      : m_fs(fs), m_inode(std::move(inode)), m_path(std::move(path)) {}
  Status append(std::span<const std::byte> data) override {
    std::lock_guard<std::mutex> lock(m_fs->m_mu);
    if (m_closed) return io_error(m_path, "write", "Bad file descriptor");
    m_inode->writable_data().append(as_chars(data));
    m_inode->mtime_ns = m_inode->ctime_ns = m_fs->now_locked();
    return {};
  }
  Status write_at(uint64_t offset, std::span<const std::byte> data) override {
    std::lock_guard<std::mutex> lock(m_fs->m_mu);
    if (m_closed) return io_error(m_path, "pwrite", "Bad file descriptor");
    std::string& s = m_inode->writable_data();
    if (s.size() < offset + data.size()) s.resize(offset + data.size(), '\0');
    s.replace(offset, data.size(), as_chars(data));
    m_inode->mtime_ns = m_inode->ctime_ns = m_fs->now_locked();
    return {};
  }
  Status sync() override {
    std::lock_guard<std::mutex> lock(m_fs->m_mu);
    if (m_closed) return io_error(m_path, "fdatasync", "Bad file descriptor");
    m_inode->synced = m_inode->data;
    return {};
  }
  Status close() override {
    std::lock_guard<std::mutex> lock(m_fs->m_mu);
    m_closed = true;
    return {};
  }

 private:
  MemoryFileSystem* m_fs;
  std::shared_ptr<Inode> m_inode;
  fs::path m_path;
  bool m_closed = false;
};

class MemoryFileSystem::Lock : public FileLock {
 public:
  Lock(MemoryFileSystem* fs, uint64_t ino) : m_fs(fs), m_ino(ino) {}
  ~Lock() override { m_fs->release_lock(m_ino); }

 private:
  MemoryFileSystem* m_fs;
  uint64_t m_ino;
};

MemoryFileSystem::MemoryFileSystem() {
  m_root = new_inode(kDirKind);
  m_root->nlink = 2;
}
MemoryFileSystem::~MemoryFileSystem() = default;

int64_t MemoryFileSystem::now_locked() const {
  int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  m_last_time_ns = std::max(now, m_last_time_ns + 1);
  return m_last_time_ns;
}

int64_t MemoryFileSystem::now_ns() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return now_locked();
}

std::shared_ptr<MemoryFileSystem::Inode> MemoryFileSystem::new_inode(int kind) const {
  auto inode = std::make_shared<Inode>();
  inode->kind = kind;
  inode->ino = m_next_ino++;
  inode->mode = kind == kDirKind ? 0755 : kind == kSymlinkKind ? 0777 : 0644;
  inode->mtime_ns = inode->ctime_ns = now_locked();
  if (kind == kDirKind) inode->nlink = 2;
  return inode;
}

FileStat MemoryFileSystem::stat_of(const Inode& inode) const {
  FileStat st;
  st.dev = 1;
  st.ino = inode.ino;
  st.size = inode.kind == kFileKind ? inode.data->size() : inode.kind == kSymlinkKind ? inode.target.size() : 0;
  st.mtime_ns = inode.mtime_ns;
  st.ctime_ns = inode.ctime_ns;
  st.mode = inode.mode & 07777;
  st.nlink = inode.nlink;
  st.is_dir = inode.kind == kDirKind;
  st.is_regular = inode.kind == kFileKind;
  st.is_symlink = inode.kind == kSymlinkKind;
  return st;
}

void MemoryFileSystem::record(Op op, const fs::path& path) const { m_accesses.push_back({op, normalize(path)}); }

Result<MemoryFileSystem::Resolved> MemoryFileSystem::resolve(const fs::path& path, bool follow_last, int depth) const {
  std::vector<std::string> comps = components(normalize(path));
  if (comps.empty()) return Resolved{nullptr, "", m_root};
  std::shared_ptr<Inode> cur = m_root;
  fs::path cur_path = "/";
  for (size_t i = 0; i < comps.size(); ++i) {
    if (cur->kind != kDirKind) return not_found(path, "resolve");  // ENOTDIR
    bool last = i + 1 == comps.size();
    auto it = cur->children.find(comps[i]);
    if (it == cur->children.end()) {
      if (last) return Resolved{cur, comps[i], nullptr};
      return not_found(path, "resolve");
    }
    std::shared_ptr<Inode> child = it->second;
    if (child->kind == kSymlinkKind && (!last || follow_last)) {
      if (depth >= kMaxSymlinkDepth) return io_error(path, "resolve", "Too many levels of symbolic links");
      fs::path target = child->target;
      fs::path next = target.is_absolute() ? target : cur_path / target;
      for (size_t j = i + 1; j < comps.size(); ++j) next /= comps[j];
      return resolve(next, follow_last, depth + 1);
    }
    if (last) return Resolved{cur, comps[i], child};
    cur = child;
    cur_path /= comps[i];
  }
  return Resolved{nullptr, "", m_root};  // unreachable
}

Result<std::shared_ptr<MemoryFileSystem::Inode>> MemoryFileSystem::existing(const fs::path& path,
                                                                            bool follow_last) const {
  MB_ASSIGN(Resolved r, resolve(path, follow_last));
  if (!r.node) return not_found(path, "stat");
  return r.node;
}

Result<FileStat> MemoryFileSystem::stat(const fs::path& path) const {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  return stat_of(*node);
}

Result<FileStat> MemoryFileSystem::lstat(const fs::path& path) const {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, false));
  return stat_of(*node);
}

Result<std::string> MemoryFileSystem::read_file(const fs::path& path) const {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kRead, path);
  MB_ASSIGN(auto node, existing(path, true));
  if (node->kind != kFileKind) return io_error(path, "read", "Is a directory");
  return *node->data;
}

Result<std::unique_ptr<ReadOnlyMapping>> MemoryFileSystem::map_file(const fs::path& path) const {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kMap, path);
  MB_ASSIGN(auto node, existing(path, true));
  if (node->kind != kFileKind) return make_error(Errc::kInvalidInput, path.string(), "not a regular file");
  return std::unique_ptr<ReadOnlyMapping>(new SharedMapping(node->data));
}

Result<std::vector<std::string>> MemoryFileSystem::list_dir(const fs::path& path) const {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  if (node->kind != kDirKind) return not_found(path, "list directory");  // ENOTDIR
  std::vector<std::string> names;
  for (const auto& [name, child] : node->children) names.push_back(name);
  return names;  // std::map keeps them sorted bytewise
}

Result<std::unique_ptr<WritableFile>> MemoryFileSystem::open_for_write(const fs::path& path) {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kWrite, path);
  MB_ASSIGN(Resolved r, resolve(path, true));
  if (!r.parent && !r.node) return not_found(path, "create");
  std::shared_ptr<Inode> node = r.node;
  if (node) {
    if (node->kind != kFileKind) return io_error(path, "create", "Is a directory");
    node->data = std::make_shared<std::string>();
    node->mtime_ns = node->ctime_ns = now_locked();
  } else {
    node = new_inode(kFileKind);
    node->nlink = 1;
    r.parent->children[r.name] = node;
    r.parent->mtime_ns = r.parent->ctime_ns = node->mtime_ns;
  }
  return std::unique_ptr<WritableFile>(new Writer(this, node, normalize(path)));
}

Status MemoryFileSystem::rename(const fs::path& from, const fs::path& to) {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kRename, to);
  MB_ASSIGN(Resolved src, resolve(from, false));
  if (!src.node) return not_found(from, "rename");
  if (!src.parent) return io_error(from, "rename", "Device or resource busy");
  MB_ASSIGN(Resolved dst, resolve(to, false));
  if (!dst.parent) return io_error(to, "rename", "Device or resource busy");
  if (dst.node == src.node) return {};
  std::string from_n = normalize(from).string(), to_n = normalize(to).string();
  if (src.node->kind == kDirKind && to_n.size() > from_n.size() &&
      to_n.compare(0, from_n.size() + 1, from_n + "/") == 0) {
    return io_error(to, "rename", "Invalid argument");
  }
  if (dst.node) {
    bool src_dir = src.node->kind == kDirKind, dst_dir = dst.node->kind == kDirKind;
    if (src_dir && !dst_dir) return io_error(to, "rename", "Not a directory");
    if (!src_dir && dst_dir) return io_error(to, "rename", "Is a directory");
    if (dst_dir && !dst.node->children.empty()) return io_error(to, "rename", "Directory not empty");
    if (!dst_dir) --dst.node->nlink;
  }
  int64_t now = now_locked();
  src.parent->children.erase(src.name);
  dst.parent->children[dst.name] = src.node;
  src.node->ctime_ns = now;
  src.parent->mtime_ns = src.parent->ctime_ns = now;
  dst.parent->mtime_ns = dst.parent->ctime_ns = now;
  return {};
}

void MemoryFileSystem::unlink_tree(const std::shared_ptr<Inode>& inode) {
  if (inode->kind == kDirKind) {
    for (auto& [name, child] : inode->children) unlink_tree(child);
  } else {
    --inode->nlink;
    inode->ctime_ns = now_locked();
  }
}

Status MemoryFileSystem::remove_impl(const fs::path& path, bool recursive) {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kRemove, path);
  auto r = resolve(path, false);
  if (!r.ok()) return r.error().code == Errc::kNotFound ? Status() : r.status();
  if (!r->node) return {};
  if (!r->parent) return io_error(path, "remove", "Device or resource busy");
  if (!recursive && r->node->kind == kDirKind && !r->node->children.empty()) {
    return io_error(path, "remove", "Directory not empty");
  }
  unlink_tree(r->node);
  r->parent->children.erase(r->name);
  r->parent->mtime_ns = r->parent->ctime_ns = now_locked();
  return {};
}

Status MemoryFileSystem::remove(const fs::path& path) { return remove_impl(path, false); }
Status MemoryFileSystem::remove_all(const fs::path& path) { return remove_impl(path, true); }

Status MemoryFileSystem::make_dirs_locked(const fs::path& path) {
  fs::path so_far = "/";
  for (const std::string& comp : components(normalize(path))) {
    so_far /= comp;
    MB_ASSIGN(Resolved r, resolve(so_far, true));
    if (r.node) {
      if (r.node->kind != kDirKind) return io_error(so_far, "create directory", "File exists");
      continue;
    }
    auto dir = new_inode(kDirKind);
    r.parent->children[r.name] = dir;
    r.parent->mtime_ns = r.parent->ctime_ns = dir->mtime_ns;
  }
  return {};
}

Status MemoryFileSystem::create_dirs(const fs::path& path) {
  std::lock_guard<std::mutex> lock(m_mu);
  return make_dirs_locked(path);
}

Status MemoryFileSystem::sync_dir(const fs::path& dir) {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(dir, true));
  if (node->kind != kDirKind) return io_error(dir, "fsync directory", "Not a directory");
  return {};
}

Status MemoryFileSystem::hard_link(const fs::path& from, const fs::path& to) {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kLink, to);
  MB_ASSIGN(auto src, existing(from, false));
  if (src->kind == kDirKind) return io_error(to, "link", "Operation not permitted");
  MB_ASSIGN(Resolved dst, resolve(to, false));
  if (dst.node || !dst.parent) return io_error(to, "link", "File exists");
  dst.parent->children[dst.name] = src;
  ++src->nlink;
  src->ctime_ns = now_locked();
  dst.parent->mtime_ns = dst.parent->ctime_ns = src->ctime_ns;
  return {};
}

Status MemoryFileSystem::reflink(const fs::path& from, const fs::path& to) {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kLink, to);
  MB_ASSIGN(auto src, existing(from, true));
  if (src->kind != kFileKind) return io_error(from, "reflink", "Is a directory");
  MB_ASSIGN(Resolved dst, resolve(to, true));
  if (dst.node || !dst.parent) return io_error(to, "create", "File exists");
  if (!m_reflink_supported) {
    return make_error(Errc::kUnsupported, to.string(), "reflink: Operation not supported");
  }
  auto node = new_inode(kFileKind);
  node->nlink = 1;
  node->data = src->data;  // shared until either side writes: copy-on-write, like FICLONE
  dst.parent->children[dst.name] = node;
  return {};
}

Status MemoryFileSystem::copy_file(const fs::path& from, const fs::path& to) {
  std::lock_guard<std::mutex> lock(m_mu);
  record(Op::kLink, to);
  MB_ASSIGN(auto src, existing(from, true));
  if (src->kind != kFileKind) return io_error(from, "open", "Is a directory");
  MB_ASSIGN(Resolved dst, resolve(to, true));
  if (!dst.parent && !dst.node) return not_found(to, "create");
  std::shared_ptr<Inode> node = dst.node;
  if (node && node->kind != kFileKind) return io_error(to, "create", "Is a directory");
  if (!node) {
    node = new_inode(kFileKind);
    node->nlink = 1;
    dst.parent->children[dst.name] = node;
  }
  node->data = std::make_shared<std::string>(*src->data);
  node->mtime_ns = node->ctime_ns = now_locked();
  return {};
}

Status MemoryFileSystem::set_mode(const fs::path& path, uint32_t mode) {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  node->mode = mode & 07777;
  node->ctime_ns = now_locked();
  return {};
}

Status MemoryFileSystem::touch(const fs::path& path) {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  node->mtime_ns = node->ctime_ns = now_locked();
  return {};
}

Result<std::unique_ptr<FileLock>> MemoryFileSystem::lock(const fs::path& path) { return lock_impl(path, true); }
Result<std::unique_ptr<FileLock>> MemoryFileSystem::try_lock(const fs::path& path) { return lock_impl(path, false); }

Result<std::unique_ptr<FileLock>> MemoryFileSystem::lock_impl(const fs::path& path, bool wait) {
  std::unique_lock<std::mutex> lk(m_mu);
  MB_ASSIGN(Resolved r, resolve(path, true));
  std::shared_ptr<Inode> node = r.node;
  if (!node) {
    if (!r.parent) return not_found(path, "open lock");
    node = new_inode(kFileKind);
    node->nlink = 1;
    r.parent->children[r.name] = node;
  }
  if (node->kind != kFileKind) return io_error(path, "open lock", "Is a directory");
  uint64_t ino = node->ino;  // flock locks the inode, not the name
  if (!wait && m_locked.count(ino) != 0) return std::unique_ptr<FileLock>();
  m_lock_cv.wait(lk, [&] { return m_locked.count(ino) == 0; });
  m_locked.insert(ino);
  return std::unique_ptr<FileLock>(new Lock(this, ino));
}

void MemoryFileSystem::release_lock(uint64_t ino) {
  {
    std::lock_guard<std::mutex> lock(m_mu);
    m_locked.erase(ino);
  }
  m_lock_cv.notify_all();
}

void MemoryFileSystem::add_file(const fs::path& path, std::string_view content) {
  std::lock_guard<std::mutex> lock(m_mu);
  Status st = make_dirs_locked(normalize(path).parent_path());
  assert(st.ok());
  (void)st;
  auto r = resolve(path, true);
  assert(r.ok() && r->parent);
  std::shared_ptr<Inode> node = r->node;
  if (!node) {
    node = new_inode(kFileKind);
    node->nlink = 1;
    r->parent->children[r->name] = node;
  }
  node->data = std::make_shared<std::string>(content);
  node->synced = node->data;
  node->mtime_ns = node->ctime_ns = now_locked();
}

void MemoryFileSystem::add_symlink(const fs::path& path, const fs::path& target) {
  std::lock_guard<std::mutex> lock(m_mu);
  Status st = make_dirs_locked(normalize(path).parent_path());
  assert(st.ok());
  (void)st;
  auto r = resolve(path, false);
  assert(r.ok() && r->parent && !r->node);
  auto node = new_inode(kSymlinkKind);
  node->nlink = 1;
  node->target = target.string();
  r->parent->children[r->name] = node;
}

Status MemoryFileSystem::set_mtime(const fs::path& path, int64_t mtime_ns) {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  node->mtime_ns = mtime_ns;
  node->ctime_ns = now_locked();
  return {};
}

Status MemoryFileSystem::set_ctime(const fs::path& path, int64_t ctime_ns) {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  node->ctime_ns = ctime_ns;
  return {};
}

void MemoryFileSystem::set_reflink_supported(bool supported) {
  std::lock_guard<std::mutex> lock(m_mu);
  m_reflink_supported = supported;
}

Result<std::string> MemoryFileSystem::contents(const fs::path& path) const {
  std::lock_guard<std::mutex> lock(m_mu);
  MB_ASSIGN(auto node, existing(path, true));
  if (node->kind != kFileKind) return io_error(path, "read", "Is a directory");
  return *node->data;
}

void MemoryFileSystem::drop_unsynced() {
  std::lock_guard<std::mutex> lock(m_mu);
  std::vector<std::shared_ptr<Inode>> stack{m_root};
  while (!stack.empty()) {
    auto node = stack.back();
    stack.pop_back();
    if (node->kind == kDirKind) {
      for (auto& [name, child] : node->children) stack.push_back(child);
    } else if (node->kind == kFileKind && node->data != node->synced) {
      node->data = node->synced ? node->synced : std::make_shared<std::string>();
    }
  }
}

std::vector<MemoryFileSystem::Access> MemoryFileSystem::accesses() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_accesses;
}

std::vector<fs::path> MemoryFileSystem::paths_with(std::initializer_list<Op> ops) const {
  std::lock_guard<std::mutex> lock(m_mu);
  std::vector<fs::path> out;
  for (const Access& a : m_accesses) {
    for (Op op : ops) {
      if (a.op == op) out.push_back(a.path);
    }
  }
  return out;
}

std::vector<fs::path> MemoryFileSystem::read_paths() const { return paths_with({Op::kRead, Op::kMap}); }
std::vector<fs::path> MemoryFileSystem::written_paths() const { return paths_with({Op::kWrite}); }
std::vector<fs::path> MemoryFileSystem::linked_paths() const { return paths_with({Op::kLink}); }

void MemoryFileSystem::clear_accesses() {
  std::lock_guard<std::mutex> lock(m_mu);
  m_accesses.clear();
}

}  // namespace mb
