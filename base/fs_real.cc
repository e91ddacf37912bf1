// RealFileSystem: POSIX calls, mmap for reads; reflink and durable sync
// through base/platform.h.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "base/fs.h"
#include "base/platform.h"

namespace mb {
namespace {

Error os_error(const fs::path& path, const char* what, int err) {
  Errc code = (err == ENOENT || err == ENOTDIR) ? Errc::kNotFound : Errc::kIo;
  return make_error(code, path.string(), "{}: {}", what, std::strerror(err));
}

FileStat from_stat(const struct stat& st) {
  FileStat out;
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  out.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  out.mode = st.st_mode & 07777;
  out.nlink = st.st_nlink;
  out.is_dir = S_ISDIR(st.st_mode);
  out.is_regular = S_ISREG(st.st_mode);
  out.is_symlink = S_ISLNK(st.st_mode);
  return out;
}

class Fd {
 public:
  explicit Fd(int fd) : m_fd(fd) {}
  ~Fd() {
    if (m_fd >= 0) ::close(m_fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return m_fd; }
  int release() { return std::exchange(m_fd, -1); }

 private:
  int m_fd;
};

class MmapMapping : public ReadOnlyMapping {
 public:
  MmapMapping(void* addr, size_t size) : m_addr(addr), m_size(size) {}
  ~MmapMapping() override {
    if (m_addr != nullptr) ::munmap(m_addr, m_size);
  }
  std::span<const std::byte> bytes() const override { return {static_cast<const std::byte*>(m_addr), m_size}; }
  void done_with(size_t offset, size_t size) const override {
    static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    if (offset >= m_size) return;
    size = std::min(size, m_size - offset);
    size_t begin = (offset + page - 1) / page * page;
    // The mapping's last page may be partial; madvise takes it whole.
    size_t end = offset + size == m_size ? m_size : (offset + size) / page * page;
    if (end > begin) platform::drop_pages(static_cast<char*>(m_addr) + begin, end - begin);
  }

 private:
  void* m_addr;
  size_t m_size;
};

class EmptyMapping : public ReadOnlyMapping {
 public:
  std::span<const std::byte> bytes() const override { return {}; }
};

class RealWritableFile : public WritableFile {
 public:
  RealWritableFile(int fd, fs::path path) : m_fd(fd), m_path(std::move(path)) {}
  ~RealWritableFile() override {
    if (m_fd >= 0) ::close(m_fd);
  }
  Status append(std::span<const std::byte> data) override {
    while (!data.empty()) {
      ssize_t n = ::write(m_fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error(m_path, "write", errno);
      }
      data = data.subspan(static_cast<size_t>(n));
    }
    return {};
  }
  Status write_at(uint64_t offset, std::span<const std::byte> data) override {
    while (!data.empty()) {
      ssize_t n = ::pwrite(m_fd, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error(m_path, "pwrite", errno);
      }
      data = data.subspan(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
    return {};
  }
  Status sync() override {
    if (int err = platform::durable_sync(m_fd); err != 0) return os_error(m_path, "fdatasync", err);
    return {};
  }
  Status close() override {
    int fd = std::exchange(m_fd, -1);
    if (fd >= 0 && ::close(fd) != 0) return os_error(m_path, "close", errno);
    return {};
  }

 private:
  int m_fd;
  fs::path m_path;
};

class FlockLock : public FileLock {
 public:
  explicit FlockLock(int fd) : m_fd(fd) {}
  ~FlockLock() override { ::close(m_fd); }  // closing releases the flock

 private:
  int m_fd;
};

class RealFileSystem : public FileSystem {
 public:
  Result<FileStat> stat(const fs::path& path) const override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return os_error(path, "stat", errno);
    return from_stat(st);
  }
  Result<FileStat> lstat(const fs::path& path) const override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return os_error(path, "lstat", errno);
    return from_stat(st);
  }

  Result<std::string> read_file(const fs::path& path) const override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return os_error(path, "open", errno);
    std::string out;
    char buf[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error(path, "read", errno);
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  Result<std::unique_ptr<ReadOnlyMapping>> map_file(const fs::path& path) const override {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return os_error(path, "open", errno);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return os_error(path, "fstat", errno);
    if (!S_ISREG(st.st_mode)) return make_error(Errc::kInvalidInput, path.string(), "not a regular file");
    if (st.st_size == 0) return std::unique_ptr<ReadOnlyMapping>(new EmptyMapping());
    void* addr = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd.get(), 0);
    if (addr == MAP_FAILED) return os_error(path, "mmap", errno);
    return std::unique_ptr<ReadOnlyMapping>(new MmapMapping(addr, static_cast<size_t>(st.st_size)));
  }

  Result<std::vector<std::string>> list_dir(const fs::path& path) const override {
    std::error_code ec;
    std::vector<std::string> names;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return os_error(path, "list directory", ec.value());
    std::sort(names.begin(), names.end());
    return names;
  }

  Result<std::unique_ptr<WritableFile>> open_for_write(const fs::path& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return os_error(path, "create", errno);
    return std::unique_ptr<WritableFile>(new RealWritableFile(fd, path));
  }

  Status rename(const fs::path& from, const fs::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return os_error(to, "rename", errno);
    return {};
  }
  Status remove(const fs::path& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      if (errno == EISDIR || errno == EPERM) {
        if (::rmdir(path.c_str()) == 0) return {};
      }
      return os_error(path, "remove", errno);
    }
    return {};
  }
  Status remove_all(const fs::path& path) override {
    std::error_code ec;
    // Cache entries are read-only; make them writable so removal works.
    if (fs::is_directory(path, ec)) {
      for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (it->is_directory(ec)) ::chmod(it->path().c_str(), 0755);
      }
      ::chmod(path.c_str(), 0755);
    }
    fs::remove_all(path, ec);
    if (ec) return os_error(path, "remove", ec.value());
    return {};
  }
  Status create_dirs(const fs::path& path) override {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) return os_error(path, "create directory", ec.value());
    return {};
  }
  Status sync_dir(const fs::path& dir) override {
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) return os_error(dir, "open directory", errno);
    if (::fsync(fd.get()) != 0) return os_error(dir, "fsync directory", errno);
    return {};
  }

  Status hard_link(const fs::path& from, const fs::path& to) override {
    // Follow a symlinked source (e.g. a Hugging Face cache snapshot) to its target.
    if (::linkat(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) != 0)
      return os_error(to, "link", errno);
    return {};
  }
  Status reflink(const fs::path& from, const fs::path& to) override {
    std::error_code ec;
    if (!fs::exists(from, ec)) return os_error(from, "open", ENOENT);
    if (int err = platform::reflink(from, to); err != 0) {
      if (err == EEXIST) return os_error(to, "create", err);
      return make_error(Errc::kUnsupported, to.string(), "reflink: {}", std::strerror(err));
    }
    return {};
  }
  Status copy_file(const fs::path& from, const fs::path& to) override {
    Fd src(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (src.get() < 0) return os_error(from, "open", errno);
    struct stat st;
    if (::fstat(src.get(), &st) != 0) return os_error(from, "fstat", errno);
    Fd dst(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (dst.get() < 0) return os_error(to, "create", errno);
    off_t off = 0;
    while (off < st.st_size) {
      ssize_t n = ::sendfile(dst.get(), src.get(), &off, static_cast<size_t>(st.st_size - off));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error(to, "copy", errno);
      }
      if (n == 0) break;
    }
    return {};
  }
  Status set_mode(const fs::path& path, uint32_t mode) override {
    if (::chmod(path.c_str(), mode) != 0) return os_error(path, "chmod", errno);
    return {};
  }
  Status touch(const fs::path& path) override {
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) return os_error(path, "touch", errno);
    return {};
  }

  Result<std::unique_ptr<FileLock>> lock(const fs::path& path) override { return lock_impl(path, true); }
  Result<std::unique_ptr<FileLock>> try_lock(const fs::path& path) override { return lock_impl(path, false); }

 private:
  Result<std::unique_ptr<FileLock>> lock_impl(const fs::path& path, bool wait) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (fd.get() < 0) return os_error(path, "open lock", errno);
    for (;;) {
      if (::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) == 0) break;
      if (errno == EINTR) continue;
      if (errno == EWOULDBLOCK && !wait) return std::unique_ptr<FileLock>();
      return os_error(path, "flock", errno);
    }
    return std::unique_ptr<FileLock>(new FlockLock(fd.release()));
  }
};

}  // namespace

std::unique_ptr<FileSystem> make_real_file_system() { return std::make_unique<RealFileSystem>(); }

}  // namespace mb
