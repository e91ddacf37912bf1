#pragma once
// Digest: a SHA-256 (OpenSSL EVP) of bytes, a file, or a canonical encoding.
//
// Every digest in modelbuild is SHA-256; the algorithm name is part of every
// key's encoding ("sha256:"), so it can change without a silent collision.
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

struct Digest {
  std::array<uint8_t, 32> bytes{};

  std::string hex() const;  // 64 lowercase hex chars
  std::string short_hex() const { return hex().substr(0, 12); }
  static Result<Digest> from_hex(std::string_view hex);
  bool is_zero() const;
  auto operator<=>(const Digest&) const = default;
};

// Incremental SHA-256.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::span<const std::byte> data);
  void update(std::string_view text);
  Digest finish();

 private:
  void* m_ctx;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of ours
};

Digest digest_bytes(std::span<const std::byte> data);
Digest digest_string(std::string_view text);

// Streams a file through SHA-256 via mmap. `on_progress` (may be null) is
// called with the number of bytes hashed so far.
Result<Digest> digest_file(const FileSystem& fs, const fs::path& path,
                           const std::function<void(uint64_t)>& on_progress = nullptr);

// The digests stored in a two-level directory DIR/xx/NAME, where xx is the
// first two hex digits and NAME the whole hex (`names_are_whole`) or the
// rest of it. A missing DIR holds none; other names are skipped.
Result<std::vector<Digest>> list_sharded_digests(const FileSystem& fs, const fs::path& dir, bool names_are_whole);

}  // namespace mb

template <>
struct std::hash<mb::Digest> {
  size_t operator()(const mb::Digest& d) const noexcept {
    size_t h;
    std::memcpy(&h, d.bytes.data(), sizeof h);
    return h;
  }
};
