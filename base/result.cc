#include "base/result.h"

namespace mb {

int exit_code_for(Errc code) {
  switch (code) {
    case Errc::kInvalidInput:
    case Errc::kNotFound:
    case Errc::kCorrupt:
    case Errc::kUnsupported:
      return 2;
    case Errc::kGateFailed:
      return 3;
    case Errc::kCancelled:
      return 130;
    case Errc::kIo:
    case Errc::kStepFailed:
    case Errc::kInternal:
      return 1;
  }
  return 1;
}

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::kInvalidInput:
      return "invalid input";
    case Errc::kNotFound:
      return "not found";
    case Errc::kIo:
      return "i/o error";
    case Errc::kCorrupt:
      return "corrupt";
    case Errc::kUnsupported:
      return "unsupported";
    case Errc::kStepFailed:
      return "step failed";
    case Errc::kGateFailed:
      return "gate failed";
    case Errc::kCancelled:
      return "cancelled";
    case Errc::kInternal:
      return "internal error";
  }
  return "error";
}

std::string Error::to_string() const {
  if (where.empty()) return message;
  return where + ": " + message;
}

}  // namespace mb
