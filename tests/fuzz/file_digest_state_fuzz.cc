// libFuzzer target: the file digest state file (`<cache>/state/file-digests`,
// docs/cache-format.md), which FileDigestCache::load() decodes at every
// start. Its trailer is a SHA-256 of the body, so random bytes would stop at
// the checksum: when the first byte is odd the rest is taken as a body and
// the right trailer is appended, which lets the fuzzer reach the header and
// entry decoding; when even, the bytes are used as they are. A loaded cache
// then digests a file (the lookup path) and saves (the encoder) to show
// that whatever load() accepted is usable.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/fs_test_support.h"
#include "base/reporter.h"
#include "cache/digest.h"
#include "cache/file_digests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    const mb::Digest trailer = mb::digest_string(bytes);
    bytes.append(reinterpret_cast<const char*>(trailer.bytes.data()), trailer.bytes.size());
  }
  mb::MemoryFileSystem fs;
  fs.add_file("/cache/state/file-digests", bytes);
  fs.add_file("/models/a.safetensors", "tensor bytes");
  mb::NullReporter reporter;
  mb::FileDigestCache cache(fs, "/cache/state/file-digests", reporter);
  cache.load();
  (void)cache.digest_of("/models/a.safetensors");
  (void)cache.save();
  return 0;
}
