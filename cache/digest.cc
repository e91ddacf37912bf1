// SHA-256 through OpenSSL's EVP interface (SHA-NI / ARMv8 crypto when present).
#include "cache/digest.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdlib>

namespace mb {
namespace {

// Large enough to amortize the callback, small enough for smooth progress.
constexpr size_t kHashChunkBytes = size_t{4} << 20;

EVP_MD_CTX* ctx_of(void* p) { return static_cast<EVP_MD_CTX*>(p); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is rejected: one spelling per digest
}

}  // namespace

std::string Digest::hex() const {
  static const char* kDigits = "0123456789abcdef";
  std::string out(64, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

Result<Digest> Digest::from_hex(std::string_view hex) {
  if (hex.size() != 64) {
    return make_error(Errc::kInvalidInput, "", "digest '{}' is not 64 hex characters", hex);
  }
  Digest d;
  for (size_t i = 0; i < 32; ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error(Errc::kInvalidInput, "", "digest '{}' is not lowercase hex", hex);
    d.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

bool Digest::is_zero() const {
  return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

Hasher::Hasher() : m_ctx(EVP_MD_CTX_new()) {
  // Allocation failure or a missing SHA-256 is not recoverable here.
  if (m_ctx == nullptr || EVP_DigestInit_ex(ctx_of(m_ctx), EVP_sha256(), nullptr) != 1) std::abort();
}

Hasher::~Hasher() { EVP_MD_CTX_free(ctx_of(m_ctx)); }

void Hasher::update(std::span<const std::byte> data) {
  if (!data.empty()) EVP_DigestUpdate(ctx_of(m_ctx), data.data(), data.size());
}

void Hasher::update(std::string_view text) { update(as_bytes(text)); }

Digest Hasher::finish() {
  Digest d;
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_of(m_ctx), d.bytes.data(), &len);
  // Ready for reuse.
  EVP_DigestInit_ex(ctx_of(m_ctx), EVP_sha256(), nullptr);
  return d;
}

Digest digest_bytes(std::span<const std::byte> data) {
  Hasher h;
  h.update(data);
  return h.finish();
}

Digest digest_string(std::string_view text) { return digest_bytes(as_bytes(text)); }

Result<Digest> digest_file(const FileSystem& fs, const fs::path& path,
                           const std::function<void(uint64_t)>& on_progress) {
  MB_ASSIGN(auto mapping, fs.map_file(path));
  std::span<const std::byte> bytes = mapping->bytes();
  Hasher h;
  uint64_t done = 0;
  while (done < bytes.size()) {
    size_t n = std::min<size_t>(kHashChunkBytes, bytes.size() - done);
    h.update(bytes.subspan(done, n));
    mapping->done_with(done, n);  // keep RSS flat while streaming gigabytes
    done += n;
    if (on_progress) on_progress(done);
  }
  return h.finish();
}

Result<std::vector<Digest>> list_sharded_digests(const FileSystem& fs, const fs::path& dir, bool names_are_whole) {
  std::vector<Digest> out;
  auto shards = fs.list_dir(dir);
  if (!shards.ok()) {
    if (shards.error().code == Errc::kNotFound) return out;
    return shards.error();
  }
  for (const std::string& shard : *shards) {
    if (shard.size() != 2) continue;
    auto names = fs.list_dir(dir / shard);
    if (!names.ok()) continue;  // not a directory
    for (const std::string& name : *names) {
      if (names_are_whole && name.compare(0, 2, shard) != 0) continue;
      auto digest = Digest::from_hex(names_are_whole ? name : shard + name);
      if (digest.ok()) out.push_back(*digest);
    }
  }
  return out;
}

}  // namespace mb
