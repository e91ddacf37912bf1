// The action-key encoding. Every value carries a one-byte type tag and every
// variable-length item a u64 little-endian length, so the encoding is
// prefix-free: two different specs can never produce the same bytes.
// docs/cache-format.md ("Action keys") is the normative description; a change
// here must bump kActionKeyFormat and the doc together.
#include "cache/action_key.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace mb {
namespace {

constexpr uint32_t kActionKeyFormat = 1;
constexpr char kActionKeyMagic[] = "MBAK";
constexpr char kDigestFunction[] = "sha256";

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_bytes(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

void put_string(std::string& out, std::string_view s) {
  out.push_back('s');
  put_bytes(out, s);
}

void put_int(std::string& out, int64_t v) {
  out.push_back('i');
  put_u64(out, static_cast<uint64_t>(v));
}

// 2^63 and 2^64 as doubles, exactly representable.
constexpr double kTwo63 = 9223372036854775808.0;
constexpr double kTwo64 = 18446744073709551616.0;

void encode(std::string& out, const nlohmann::json& v) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::null:
    case T::discarded:
      out.push_back('n');
      return;
    case T::boolean:
      out.push_back(v.get<bool>() ? 't' : 'f');
      return;
    case T::number_integer:
      put_int(out, v.get<int64_t>());
      return;
    case T::number_unsigned:  // only above INT64_MAX after normalization
      out.push_back('u');
      put_u64(out, v.get<uint64_t>());
      return;
    case T::number_float: {
      double d = v.get<double>();
      if (std::isnan(d)) d = std::numeric_limits<double>::quiet_NaN();  // one NaN
      uint64_t bits;
      std::memcpy(&bits, &d, sizeof bits);
      out.push_back('d');
      put_u64(out, bits);
      return;
    }
    case T::string:
      put_string(out, v.get_ref<const std::string&>());
      return;
    case T::array:
      out.push_back('a');
      put_u64(out, v.size());
      for (const auto& e : v) encode(out, e);
      return;
    case T::object: {
      // nlohmann::json keeps keys sorted already; sorting here keeps the
      // encoding independent of the json type's map.
      std::vector<std::pair<std::string_view, const nlohmann::json*>> items;
      for (auto it = v.begin(); it != v.end(); ++it) items.emplace_back(it.key(), &it.value());
      std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      out.push_back('o');
      put_u64(out, items.size());
      for (const auto& [key, value] : items) {
        put_bytes(out, key);
        encode(out, *value);
      }
      return;
    }
    case T::binary: {
      const auto& bin = v.get_binary();
      out.push_back('b');
      put_bytes(out, std::string_view(reinterpret_cast<const char*>(bin.data()), bin.size()));
      out.push_back(bin.has_subtype() ? 1 : 0);
      if (bin.has_subtype()) put_u64(out, bin.subtype());
      return;
    }
  }
}

}  // namespace

nlohmann::json normalize_json(const nlohmann::json& value) {
  using T = nlohmann::json::value_t;
  switch (value.type()) {
    case T::number_float: {
      double d = value.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d) {
        if (d >= -kTwo63 && d < kTwo63) return nlohmann::json(static_cast<int64_t>(d));
        if (d >= 0 && d < kTwo64) return nlohmann::json(static_cast<uint64_t>(d));
      }
      return value;
    }
    case T::number_unsigned: {
      uint64_t u = value.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return nlohmann::json(static_cast<int64_t>(u));
      }
      return value;
    }
    case T::array: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& e : value) out.push_back(normalize_json(e));
      return out;
    }
    case T::object: {
      nlohmann::json out = nlohmann::json::object();
      for (auto it = value.begin(); it != value.end(); ++it) out[it.key()] = normalize_json(it.value());
      return out;
    }
    default:
      return value;
  }
}

std::string canonical_json(const nlohmann::json& value) {
  std::string out;
  encode(out, normalize_json(value));
  return out;
}

std::string canonical_encoding(const ActionKeySpec& spec) {
  std::string out(kActionKeyMagic, 4);
  put_u32(out, kActionKeyFormat);
  put_string(out, kDigestFunction);
  put_string(out, spec.kind);
  put_int(out, spec.algorithm_version);
  out += canonical_json(spec.params);
  out.push_back('I');
  put_u64(out, spec.inputs.size());
  for (const ActionKeyInput& input : spec.inputs) {
    put_string(out, input.name);
    out.push_back('h');
    out.append(reinterpret_cast<const char*>(input.digest.bytes.data()), input.digest.bytes.size());
  }
  return out;
}

Digest action_key(const ActionKeySpec& spec) { return digest_string(canonical_encoding(spec)); }

}  // namespace mb
