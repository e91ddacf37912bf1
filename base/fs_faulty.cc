// FaultyFileSystem: counts mutating operations and fails the chosen one.
#include "base/fs_test_support.h"

namespace mb {

class FaultyFileSystem::Writer : public WritableFile {
 public:
  Writer(FaultyFileSystem* owner, std::unique_ptr<WritableFile> inner, fs::path path)
      : m_owner(owner), m_inner(std::move(inner)), m_path(std::move(path)) {}
  Status append(std::span<const std::byte> data) override {
    MB_TRY(m_owner->op("write", m_path, true));
    return m_inner->append(data);
  }
  Status write_at(uint64_t offset, std::span<const std::byte> data) override {
    MB_TRY(m_owner->op("pwrite", m_path, true));
    return m_inner->write_at(offset, data);
  }
  Status sync() override {
    MB_TRY(m_owner->op("fdatasync", m_path, false));
    return m_inner->sync();
  }
  Status close() override {
    // A failed close still releases the descriptor, as close(2) does.
    Status injected = m_owner->op("close", m_path, false);
    Status st = m_inner->close();
    return injected.ok() ? st : injected;
  }

 private:
  FaultyFileSystem* m_owner;
  std::unique_ptr<WritableFile> m_inner;
  fs::path m_path;
};

FaultyFileSystem::FaultyFileSystem(FileSystem& inner) : m_inner(inner) {}

void FaultyFileSystem::fail_write_after(int n, bool sticky) {
  std::lock_guard<std::mutex> lock(m_mu);
  m_fail_write_at = m_writes + n;
  m_write_sticky = sticky;
}

void FaultyFileSystem::fail_op_after(int n, bool sticky) {
  std::lock_guard<std::mutex> lock(m_mu);
  m_fail_op_at = m_ops + n;
  m_op_sticky = sticky;
}

void FaultyFileSystem::clear_faults() {
  std::lock_guard<std::mutex> lock(m_mu);
  m_fail_op_at = 0;
  m_fail_write_at = 0;
}

int FaultyFileSystem::op_count() const {
  std::lock_guard<std::mutex> lock(m_mu);
  return m_ops;
}

void FaultyFileSystem::reset_counts() {
  std::lock_guard<std::mutex> lock(m_mu);
  m_ops = 0;
  m_writes = 0;
  m_fail_op_at = 0;
  m_fail_write_at = 0;
}

Status FaultyFileSystem::crash() {
  auto* memory = dynamic_cast<MemoryFileSystem*>(&m_inner);
  if (memory == nullptr) {
    return make_error(Errc::kUnsupported, "", "crash() needs a MemoryFileSystem underneath");
  }
  memory->drop_unsynced();
  clear_faults();
  return {};
}

Status FaultyFileSystem::op(const char* what, const fs::path& path, bool is_data_write) {
  std::lock_guard<std::mutex> lock(m_mu);
  ++m_ops;
  auto hit = [](int count, int at, bool sticky) { return at > 0 && (count == at || (sticky && count > at)); };
  bool fail = hit(m_ops, m_fail_op_at, m_op_sticky);
  if (is_data_write) {
    ++m_writes;
    fail = fail || hit(m_writes, m_fail_write_at, m_write_sticky);
  }
  if (fail) return make_error(Errc::kIo, path.string(), "{}: injected fault", what);
  return {};
}

Result<std::unique_ptr<WritableFile>> FaultyFileSystem::open_for_write(const fs::path& path) {
  MB_TRY(op("create", path, false));
  MB_ASSIGN(auto inner, m_inner.open_for_write(path));
  return std::unique_ptr<WritableFile>(new Writer(this, std::move(inner), path));
}

Status FaultyFileSystem::rename(const fs::path& from, const fs::path& to) {
  MB_TRY(op("rename", to, false));
  return m_inner.rename(from, to);
}
Status FaultyFileSystem::remove(const fs::path& path) {
  MB_TRY(op("remove", path, false));
  return m_inner.remove(path);
}
Status FaultyFileSystem::remove_all(const fs::path& path) {
  MB_TRY(op("remove", path, false));
  return m_inner.remove_all(path);
}
Status FaultyFileSystem::create_dirs(const fs::path& path) {
  MB_TRY(op("create directory", path, false));
  return m_inner.create_dirs(path);
}
Status FaultyFileSystem::sync_dir(const fs::path& dir) {
  MB_TRY(op("fsync directory", dir, false));
  return m_inner.sync_dir(dir);
}
Status FaultyFileSystem::hard_link(const fs::path& from, const fs::path& to) {
  MB_TRY(op("link", to, false));
  return m_inner.hard_link(from, to);
}
Status FaultyFileSystem::reflink(const fs::path& from, const fs::path& to) {
  MB_TRY(op("reflink", to, false));
  return m_inner.reflink(from, to);
}
Status FaultyFileSystem::copy_file(const fs::path& from, const fs::path& to) {
  MB_TRY(op("copy", to, false));
  return m_inner.copy_file(from, to);
}
Status FaultyFileSystem::set_mode(const fs::path& path, uint32_t mode) {
  MB_TRY(op("chmod", path, false));
  return m_inner.set_mode(path, mode);
}
Status FaultyFileSystem::touch(const fs::path& path) {
  MB_TRY(op("touch", path, false));
  return m_inner.touch(path);
}
Result<std::unique_ptr<FileLock>> FaultyFileSystem::lock(const fs::path& path) {
  MB_TRY(op("open lock", path, false));
  return m_inner.lock(path);
}
Result<std::unique_ptr<FileLock>> FaultyFileSystem::try_lock(const fs::path& path) {
  MB_TRY(op("open lock", path, false));
  return m_inner.try_lock(path);
}

}  // namespace mb
