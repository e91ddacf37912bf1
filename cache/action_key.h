#pragma once
// ActionKey: the cache key of one build step.
//
// A key is SHA-256 over a canonical, versioned, type-tagged encoding of
//   (format version, step kind, algorithm version, normalized parameters,
//    input (name, digest) pairs in the order the rule lists them).
// Parameters are normalized JSON: object keys sorted, floats with an integral
// value encoded as integers (so `8` and `8.0` give the same key), and every
// value tagged with its type, so "8" (a string) and 8 differ. The exact byte
// encoding is specified in docs/cache-format.md.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cache/digest.h"

namespace mb {

struct ActionKeyInput {
  std::string name;  // role of the input, e.g. "base", "adapter.0"
  Digest digest;     // content digest (of a file, a directory tree, or an upstream output)
};

struct ActionKeySpec {
  std::string kind;           // step kind, e.g. "fuse"
  int algorithm_version = 1;  // bumped when a rule's output bytes change
  nlohmann::json params;      // rule-normalized parameters
  // Order is significant (e.g. adapters applied in sequence), so the rule
  // must list inputs in a deterministic order.
  std::vector<ActionKeyInput> inputs;
};

// The canonical byte encoding (exposed for tests and `modelbuild explain`).
std::string canonical_encoding(const ActionKeySpec& spec);
// Canonical encoding of a JSON value alone.
std::string canonical_json(const nlohmann::json& value);
// Normalizes a JSON value: integral doubles become integers, recursively.
nlohmann::json normalize_json(const nlohmann::json& value);

Digest action_key(const ActionKeySpec& spec);

}  // namespace mb
