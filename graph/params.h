#pragma once
// ParamReader: a rule's parameters, parsed once into the rule's own struct.
//
// Planners write step parameters as JSON (they are part of the step key, in
// the canonical encoding of cache/action_key.h); a rule reads them back with
// one ParamReader per parse:
//
//   ParamReader r(params);
//   r.required("bits", p.bits);
//   r.optional("group_size", p.group_size);
//   MB_TRY(r.finish());
//
// A missing required key, a value of the wrong type, or a key no field asked
// for is an error naming the key, so a misspelt parameter can never fall
// back to a default. Not thread-safe; cheap to make.
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "base/result.h"

namespace mb {

class ParamReader {
 public:
  explicit ParamReader(const nlohmann::json& params);

  template <typename T>
  void required(const char* key, T& out) {
    if (!note(key)) return;
    if (!m_params.contains(key)) return fail(key, "is missing");
    read(key, out);
  }
  // Leaves `out` as it is when the key is absent.
  template <typename T>
  void optional(const char* key, T& out) {
    if (note(key) && m_params.contains(key)) read(key, out);
  }
  // Absent or null gives nullopt.
  template <typename T>
  void optional(const char* key, std::optional<T>& out) {
    if (!note(key) || !m_params.contains(key) || m_params[key].is_null()) return;
    T value{};
    read(key, value);
    out = std::move(value);
  }
  // Every key present was read and parsed.
  Status finish() const;

 private:
  // Records that `key` belongs to the struct; false once an error is known.
  bool note(const char* key) {
    m_read.insert(key);
    return m_error.empty();
  }
  void fail(const char* key, const std::string& what);
  template <typename T>
  void read(const char* key, T& out) {
    try {
      out = m_params[key].get<T>();
    } catch (const nlohmann::json::exception&) {
      fail(key, "has the wrong type: " + m_params[key].dump());
    }
  }

  const nlohmann::json& m_params;
  std::set<std::string> m_read;
  std::string m_error;
};

}  // namespace mb
