#!/usr/bin/env bash
# The style CI keeps (docs/ARCHITECTURE.md, "Style"): every C++ file as
# .clang-format formats it, and one naming scheme for constants (kUpperCamel,
# like enumerators). Fails listing the files to fix.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files '*.cc' '*.h')
status=0
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/check-style.$$; then
  echo "check-style: these files differ from .clang-format (run clang-format -i on them):" >&2
  grep -o '^[^:]*\.\(cc\|h\)' /tmp/check-style.$$ | sort -u >&2
  status=1
fi
rm -f /tmp/check-style.$$
# Constants are kUpperCamel; k_snake_case was the other scheme once in use.
if grep -nE '\bk_[a-z][a-z0-9_]*\b' "${files[@]}" | grep -vE '\b(k_proj|k_norm)\b' >&2; then
  echo "check-style: constants are named kUpperCamel, not k_snake_case" >&2
  status=1
fi
exit $status
