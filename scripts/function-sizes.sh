#!/usr/bin/env bash
# The largest functions, by line count (from the line naming the function to
# its closing brace, comments and blank lines included), for the house rule
# "functions under ~60 lines" (docs/ARCHITECTURE.md, "Style").
# Usage: scripts/function-sizes.sh [-n COUNT (default 10)] [FOLDER...]
# Prints the COUNT largest over the tracked *.cc/*.h files of the folders
# (default: the whole tree, tests included), then the largest in each folder
# outside its *_test.cc files.
# Lambdas count as part of the function that holds them. Universal Ctags
# finds the definitions (scripts/install-deps.sh --test installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
count=10
if [ "${1:-}" = -n ]; then
  count=$2
  shift 2
fi
command -v ctags >/dev/null || {
  echo "function-sizes: needs Universal Ctags (scripts/install-deps.sh --test)" >&2
  exit 2
}
mapfile -t files < <(git ls-files -- "${@:-.}" | grep -E '\.(cc|h)$')
ctags --output-format=json --fields=+ne --kinds-C++=f --language-force=C++ -f - "${files[@]}" |
  python3 -c '
import json, sys
count = int(sys.argv[1])
rows = []
for line in sys.stdin:
    t = json.loads(line)
    if t.get("_type") != "tag" or t["name"].startswith("__anon") or "end" not in t:
        continue
    scope = t.get("scope", "")
    name = t["name"]
    # Keep the class in the name (Builder::run), not the namespaces.
    parts = [p for p in scope.split("::") if p and p != "mb" and not p.startswith("__anon")]
    if parts and t.get("scopeKind") in ("class", "struct"):
        name = parts[-1] + "::" + name
    rows.append((t["end"] - t["line"] + 1, t["path"], t["line"], name))
rows.sort(key=lambda r: (-r[0], r[1], r[2]))
print(f"The {count} largest functions (lines, where, name):")
for n, path, line, name in rows[:count]:
    print(f"{n:5d}  {path}:{line}  {name}")
largest = {}
for r in rows:
    if r[1].endswith("_test.cc"):
        continue
    folder = r[1].split("/")[0] if "/" in r[1] else "."
    largest.setdefault(folder, r)
print("\nThe largest in each folder (tests left out):")
for folder in sorted(largest):
    n, path, line, name = largest[folder]
    print(f"{n:5d}  {path}:{line}  {name}")
' "$count"
