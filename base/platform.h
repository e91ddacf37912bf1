// The operating-system calls that differ between Linux and macOS, behind one
// small seam, so a macOS port only fills in base/platform.cc's __APPLE__
// branch. Linux is the tested platform; the macOS branch is written but has
// never been compiled (README, "Platforms").
//
// Free functions, no state; each is safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace mb::platform {

// Creates `to` as a copy-on-write clone of `from` (Linux FICLONE, macOS
// clonefile). Returns 0, or the errno of the failure; `to` is then absent.
// REQUIRES: `to` does not exist.
[[nodiscard]] int reflink(const std::filesystem::path& from, const std::filesystem::path& to);

// Makes an open file's written data durable (Linux fdatasync; macOS
// fcntl(F_FULLFSYNC), since plain fsync there does not flush the drive's cache).
// Returns 0 or errno.
[[nodiscard]] int durable_sync(int fd);

// Tells the kernel the pages in [addr, addr + size) of a read-only file
// mapping are no longer needed (madvise MADV_DONTNEED; they are re-read from
// the file if touched again). A hint: failures are ignored.
// REQUIRES: addr and size are page-aligned, within one mapping.
void drop_pages(void* addr, size_t size);

// Peak resident set of this process in bytes (Linux VmHWM, macOS getrusage).
uint64_t peak_rss_bytes();

// Current resident set of this process in bytes (Linux VmRSS, macOS task_info).
uint64_t current_rss_bytes();

// getrusage's ru_maxrss (of this process or a waited-for child) in bytes: the
// field is KiB on Linux and bytes on macOS.
uint64_t maxrss_bytes(long ru_maxrss);

// Restarts the peak-RSS count from the current resident set, where the OS can
// (Linux /proc/self/clear_refs). Returns false where it cannot (macOS).
bool reset_peak_rss();

}  // namespace mb::platform
