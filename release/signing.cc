#include "release/signing.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <vector>

namespace mb {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

std::string openssl_message() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return fmt::format(" ({})", buf);
}

// PEM text -> key. `is_private` chooses the PEM type expected.
Result<PkeyPtr> load_key(FileSystem& fs, const fs::path& file, bool is_private) {
  auto text = fs.read_file(file);
  if (!text.ok())
    return make_error(Errc::kInvalidInput, file.string(), "cannot read the {} key: {}",
                      is_private ? "private" : "public", text.error().message);
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  EVP_PKEY* key = is_private ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr)
                             : PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  if (!key)
    return make_error(Errc::kInvalidInput, file.string(), "not a PEM {} key{}", is_private ? "private" : "public",
                      openssl_message());
  PkeyPtr owned(key);
  if (EVP_PKEY_id(key) != EVP_PKEY_ED25519)
    return make_error(Errc::kInvalidInput, file.string(), "not an Ed25519 key (make one with `modelbuild keygen`)");
  return owned;
}

std::string to_hex(const std::vector<unsigned char>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

Status write_text(FileSystem& fs, const fs::path& path, const std::string& text, uint32_t mode) {
  // Written under a temporary name with its final mode, then renamed: a
  // private key is never readable by others, not even briefly.
  fs::path tmp = temp_path_for(path);
  MB_ASSIGN(auto file, fs.open_for_write(tmp));
  MB_TRY(fs.set_mode(tmp, mode));
  MB_TRY(file->append(as_bytes(text)));
  MB_TRY(file->sync());
  MB_TRY(file->close());
  return fs.rename(tmp, path);
}

}  // namespace

Status generate_key_pair(FileSystem& fs, const fs::path& prefix) {
  const fs::path key_file = prefix.string() + ".key", pub_file = prefix.string() + ".pub";
  for (const auto& f : {key_file, pub_file})
    if (fs.stat(f).ok()) return make_error(Errc::kInvalidInput, f.string(), "already exists; not overwriting a key");
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 || EVP_PKEY_keygen(ctx.get(), &raw) <= 0)
    return make_error(Errc::kInternal, "", "Ed25519 key generation failed{}", openssl_message());
  PkeyPtr key(raw);
  auto pem = [&](bool priv) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    int ok = priv ? PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr)
                  : PEM_write_bio_PUBKEY(bio.get(), key.get());
    if (ok != 1) return std::string();
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(n));
  };
  std::string priv = pem(true), pub = pem(false);
  if (priv.empty() || pub.empty()) return make_error(Errc::kInternal, "", "cannot encode the key{}", openssl_message());
  if (!prefix.parent_path().empty()) MB_TRY(fs.create_dirs(prefix.parent_path()));
  MB_TRY(write_text(fs, key_file, priv, 0600));
  MB_TRY(write_text(fs, pub_file, pub, 0644));
  return {};
}

Result<std::string> sign_message(FileSystem& fs, const fs::path& key_file, std::string_view message) {
  MB_ASSIGN(PkeyPtr key, load_key(fs, key_file, true));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1)
    return make_error(Errc::kInternal, key_file.string(), "signing failed{}", openssl_message());
  std::vector<unsigned char> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, msg, message.size()) != 1)
    return make_error(Errc::kInternal, key_file.string(), "signing failed{}", openssl_message());
  sig.resize(len);
  return "ed25519 " + to_hex(sig) + "\n";
}

Status verify_signature(FileSystem& fs, const fs::path& pub_file, std::string_view message,
                        std::string_view signature_text, const std::string& signature_name) {
  MB_ASSIGN(PkeyPtr key, load_key(fs, pub_file, false));
  std::string_view text = signature_text;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  constexpr std::string_view prefix = "ed25519 ";
  auto bad = [&](std::string_view why) { return make_error(Errc::kCorrupt, signature_name, "{}", why); };
  if (text.substr(0, prefix.size()) != prefix || text.size() != prefix.size() + 128)
    return bad("not an Ed25519 signature file (expected 'ed25519 <128 hex digits>')");
  std::vector<unsigned char> sig;
  for (size_t i = prefix.size(); i < text.size(); i += 2) {
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return bad("the signature is not lowercase hex");
    sig.push_back(static_cast<unsigned char>(hi * 16 + lo));
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1)
    return make_error(Errc::kInternal, pub_file.string(), "cannot verify{}", openssl_message());
  int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), reinterpret_cast<const unsigned char*>(message.data()),
                            message.size());
  ERR_clear_error();
  if (rc != 1)
    return bad(fmt::format("the signature does not match manifest.json for the public key {}", pub_file.string()));
  return {};
}

}  // namespace mb
