// libFuzzer target: modelbuild.lock, read from an in-memory filesystem.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/fs_test_support.h"
#include "release/lock_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mb::MemoryFileSystem fs;
  fs.add_file("/p/modelbuild.lock", std::string_view(reinterpret_cast<const char*>(data), size));
  (void)mb::read_lock_file(fs, "/p/modelbuild.lock");
  return 0;
}
