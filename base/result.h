#pragma once
// Result<T> and Status: errors as values at module boundaries.
//
// An Error carries a code (which decides the process exit status), a
// location (`file:line:col`, a tensor name, a step name: whatever lets the
// user find the problem) and a message. Exceptions are never thrown across
// module boundaries. The last net is cli::run() in cli/commands.cc, which
// catches any std::exception that escapes a command on the main thread;
// code on worker threads turns exceptions into errors with catch_all()
// (base/parallel.h), because a throw there would end the process.
#include <fmt/format.h>

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace mb {

enum class Errc {
  kInvalidInput,  // bad recipe, bad file, bad argument: exit 2, nothing ran
  kNotFound,      // a file or key that should exist does not
  kIo,            // the operating system refused
  kCorrupt,       // data failed validation (digest mismatch, hostile header)
  kUnsupported,   // valid but not implemented here (dtype, architecture)
  kStepFailed,    // a build step ran and failed: exit 1
  kGateFailed,    // an accuracy or retention gate failed: exit 3
  kCancelled,     // interrupted by the user
  kInternal,      // a bug
};

// Process exit status for an error code. Documented in docs/cli.md.
int exit_code_for(Errc code);
const char* errc_name(Errc code);

struct Error {
  Errc code = Errc::kInternal;
  std::string where;    // "recipe.yaml:3:5", "model.layers.0.q_proj.weight", or ""
  std::string message;  // one sentence, no trailing period needed

  // "where: message", or just the message when there is no location.
  std::string to_string() const;
};

template <typename... Args>
Error make_error(Errc code, std::string where, fmt::format_string<Args...> f, Args&&... args) {
  return Error{code, std::move(where), fmt::format(f, std::forward<Args>(args)...)};
}

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : m_error(std::move(e)), m_ok(false) {}  // NOLINT: implicit by design

  static Status ok_status() { return Status(); }
  bool ok() const { return m_ok; }
  explicit operator bool() const { return m_ok; }
  const Error& error() const {
    assert(!m_ok);
    return m_error;
  }

 private:
  Error m_error;
  bool m_ok = true;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : m_v(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error e) : m_v(std::move(e)) {}      // NOLINT

  bool ok() const { return m_v.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(m_v);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(m_v);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(m_v));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(m_v);
  }
  Status status() const { return ok() ? Status() : Status(error()); }

 private:
  std::variant<T, Error> m_v;
};

}  // namespace mb

#define MB_CONCAT_INNER(a, b) a##b
#define MB_CONCAT(a, b) MB_CONCAT_INNER(a, b)

// Return early from a function returning Status or Result<U> when `expr`
// (a Status or Result) failed.
#define MB_TRY(expr)                                   \
  do {                                                 \
    auto&& mb_try_tmp_ = (expr);                       \
    if (!mb_try_tmp_.ok()) return mb_try_tmp_.error(); \
  } while (0)

// `MB_ASSIGN(auto x, make_x());` declares x from a Result or returns its error.
#define MB_ASSIGN(lhs, expr) MB_ASSIGN_IMPL(MB_CONCAT(mb_assign_tmp_, __LINE__), lhs, expr)
#define MB_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                   \
  if (!tmp.ok()) return tmp.error();   \
  lhs = std::move(tmp).value()
