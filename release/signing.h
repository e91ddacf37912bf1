#pragma once
// Ed25519 signatures over release manifests, through OpenSSL's EVP API.
//
// Keys are PEM files: the private key PKCS#8 ("PRIVATE KEY", written 0600),
// the public key SubjectPublicKeyInfo ("PUBLIC KEY"). A signature file holds
// one line: "ed25519 <128 hex digits>". Ed25519 signs the message itself
// (no separate digest), so the signature covers manifest.json byte for byte.
#include <string>
#include <string_view>

#include "base/fs.h"
#include "base/result.h"

namespace mb {

// Writes PREFIX.key (0600) and PREFIX.pub. Refuses to overwrite either.
Status generate_key_pair(FileSystem& fs, const fs::path& prefix);

// The signature file's text for `message`, signed with the private key in
// `key_file`. A missing or unreadable key is Errc::kInvalidInput naming it.
Result<std::string> sign_message(FileSystem& fs, const fs::path& key_file, std::string_view message);

// Checks `signature_text` (a signature file's content) against `message`
// with the public key in `pub_file`. A bad signature is Errc::kCorrupt.
Status verify_signature(FileSystem& fs, const fs::path& pub_file, std::string_view message,
                        std::string_view signature_text, const std::string& signature_name);

}  // namespace mb
