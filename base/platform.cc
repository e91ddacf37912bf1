// base/platform.h, for Linux (tested) and macOS (UNTESTED: written from the
// man pages, never compiled; a macOS port starts by building this branch).
#include "base/platform.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#ifdef __APPLE__
#include <mach/mach.h>
#include <sys/clonefile.h>
#else
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

namespace mb::platform {

#ifdef __APPLE__  // UNTESTED

uint64_t maxrss_bytes(long ru_maxrss) { return static_cast<uint64_t>(ru_maxrss); }

int reflink(const std::filesystem::path& from, const std::filesystem::path& to) {
  // clonefile creates `to` itself and fails if it exists, like O_EXCL.
  return ::clonefile(from.c_str(), to.c_str(), 0) == 0 ? 0 : errno;
}

int durable_sync(int fd) {
  if (::fcntl(fd, F_FULLFSYNC) == 0) return 0;
  // Some filesystems (network, FUSE) refuse F_FULLFSYNC; fsync is the best left.
  return ::fsync(fd) == 0 ? 0 : errno;
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return maxrss_bytes(ru.ru_maxrss);
}

uint64_t current_rss_bytes() {
  mach_task_basic_info info{};
  mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
  if (::task_info(mach_task_self(), MACH_TASK_BASIC_INFO, reinterpret_cast<task_info_t>(&info), &count) != KERN_SUCCESS)
    return 0;
  return info.resident_size;
}

bool reset_peak_rss() { return false; }

#else  // Linux

int reflink(const std::filesystem::path& from, const std::filesystem::path& to) {
  int src = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return errno;
  int dst = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (dst < 0) {
    int err = errno;
    ::close(src);
    return err;
  }
  int err = ::ioctl(dst, FICLONE, src) == 0 ? 0 : errno;
  ::close(dst);
  ::close(src);
  if (err != 0) ::unlink(to.c_str());
  return err;
}

int durable_sync(int fd) { return ::fdatasync(fd) == 0 ? 0 : errno; }

namespace {
// A "Name:   123 kB" line of /proc/self/status, in bytes; 0 if absent.
uint64_t status_kb(const char* name) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(name) + ":";
  while (std::getline(f, line))
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size())) * 1024;
  return 0;
}
}  // namespace

uint64_t peak_rss_bytes() { return status_kb("VmHWM"); }

uint64_t current_rss_bytes() { return status_kb("VmRSS"); }

uint64_t maxrss_bytes(long ru_maxrss) { return static_cast<uint64_t>(ru_maxrss) * 1024; }

bool reset_peak_rss() { return static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5"); }

#endif

void drop_pages(void* addr, size_t size) { ::madvise(addr, size, MADV_DONTNEED); }

}  // namespace mb::platform
