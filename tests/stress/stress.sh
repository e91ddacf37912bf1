#!/usr/bin/env bash
# Standing stress tests (issue 14), run by ctest: signals mid-build, a kill -9
# storm, four builders on one cache. Usage: stress.sh MODELBUILD [KILLS]
# Each check prints what it found and the script fails on the first
# violation. No timing assertions: sleeps only choose when to strike.
set -euo pipefail
mb=$(realpath "$1")
kills=${2:-50}
work=$(mktemp -d /tmp/modelbuild-stress.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# Alive and not a zombie (an orphan's zombie waits for an init that may
# never reap it in a container).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }

# A project whose steps take a moment each: a chain of command targets, so
# a kill lands in a step, a commit, a materialization or between them.
project() {
  local dir=$1 pause=$2
  mkdir -p "$dir"
  cat >"$dir/modelbuild.yaml" <<EOF
version: 1
targets:
  a:
    command: "sleep $pause; head -c 200000 /dev/zero | tr '\\\\0' a > {out}/a.bin"
    outputs: [a.bin]
  b:
    command: "sleep $pause; cat {a}/a.bin {a}/a.bin > {out}/b.bin"
    inputs: [a]
    outputs: [b.bin]
  c:
    command: "sleep $pause; cat {b}/b.bin {a}/a.bin > {out}/c.bin"
    inputs: [a, b]
    outputs: [c.bin]
  slow:
    command: "sleep 60 & echo \$! > child.pid; wait; echo done > {out}/s.txt"
    outputs: [s.txt]
EOF
}

# Nothing partial: no leftover temporaries, every output whole.
check_clean() {
  local dir=$1 what=$2
  local left
  left=$(find "$dir/.modelbuild/tmp" "$dir/.modelbuild/views" "$dir/build" -maxdepth 1 -regextype posix-extended \
    \( -name '*.tmp.*' -o -regex '.*/[0-9a-f]{64}\.[0-9]+\.[0-9]+' \) 2>/dev/null | wc -l || true)
  [ "$left" = 0 ] || fail "$what: $left leftover temporaries: $(ls -a "$dir/.modelbuild/tmp" "$dir/build")"
  local t n
  for n in 1 2 3; do
    t=$(echo abc | cut -c"$n")
    [ -e "$dir/build/$t" ] || continue
    local want=$((200000 * n))
    local got
    got=$(wc -c <"$dir/build/$t/$t.bin")
    [ "$got" = "$want" ] || fail "$what: build/$t/$t.bin is $got bytes, not $want"
  done
}

# 1. Each signal during a long command step: exit status, no surviving
#    child, nothing left behind, and the next build reuses finished steps.
for sig in INT TERM HUP; do
  dir=$work/sig-$sig
  project "$dir" 0
  (cd "$dir" && "$mb" a b c >/dev/null 2>&1)
  (cd "$dir" && exec "$mb" a b c slow >out.txt 2>&1) &
  pid=$!
  for _ in $(seq 100); do [ -s "$dir/child.pid" ] && break; sleep 0.1; done
  [ -s "$dir/child.pid" ] || fail "SIG$sig: the slow step never started"
  kill -s "$sig" "$pid"
  rc=0
  wait "$pid" || rc=$?
  want=$(( 128 + $(kill -l "$sig") ))
  [ "$rc" = "$want" ] || fail "SIG$sig: exit $rc, wanted $want ($(cat "$dir/out.txt"))"
  child=$(cat "$dir/child.pid")
  ! alive "$child" || fail "SIG$sig: the step's child $child survived"
  [ ! -e "$dir/build/slow" ] || fail "SIG$sig: build/slow exists"
  check_clean "$dir" "SIG$sig"
  out=$(cd "$dir" && "$mb" a b c 2>&1) || fail "SIG$sig: rebuild failed: $out"
  ! grep -q "started" <<<"$out" || fail "SIG$sig: finished steps ran again: $out"
  echo "ok: SIG$sig exits $rc, child gone, nothing left, finished steps reused"
done

# 2. A second SIGINT exits at once and still leaves nothing visible.
dir=$work/sig-twice
project "$dir" 0
(cd "$dir" && exec "$mb" slow >out.txt 2>&1) &
pid=$!
for _ in $(seq 100); do [ -s "$dir/child.pid" ] && break; sleep 0.1; done
kill -INT "$pid"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" = 130 ] || fail "second SIGINT: exit $rc, wanted 130"
! alive "$(cat "$dir/child.pid")" || fail "second SIGINT: the child survived"
[ ! -e "$dir/build/slow" ] || fail "second SIGINT: build/slow exists"
echo "ok: a second SIGINT exits 130 at once, child gone"

# 3. kill -9 storm: builds killed at random moments; then one clean build
#    must succeed, the cache verify, and nothing partial remain.
dir=$work/storm
project "$dir" 0.05
for i in $(seq "$kills"); do
  rm -rf "$dir/build" # so every round materializes again
  [ $((i % 5)) = 0 ] && rm -rf "$dir/.modelbuild/ac" # and every fifth runs again
  (cd "$dir" && exec "$mb" a b c >/dev/null 2>&1) &
  pid=$!
  sleep "0.$((RANDOM % 30))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
before=$(find "$dir/.modelbuild/tmp" "$dir/.modelbuild/views" "$dir/build" -maxdepth 1 -name '*.*.*' 2>/dev/null | wc -l || true)
(cd "$dir" && "$mb" a b c >/dev/null 2>&1) || fail "storm: the clean build failed"
(cd "$dir" && "$mb" cache verify >/dev/null 2>&1) || fail "storm: cache verify failed"
check_clean "$dir" "storm"
echo "ok: $kills kill -9s left $before temporaries; a clean build swept them, cache verify passed"

# 4. Four builders at once on one cache: every step runs exactly once.
dir=$work/four
project "$dir" 0.3
export MODELBUILD_CACHE=$work/shared-cache
pids=()
for k in 1 2 3 4; do
  (cd "$dir" && exec "$mb" a b c >"out.$k" 2>&1) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "four builders: one failed"; done
runs=$(cat "$dir"/out.* | grep -c "built in" || true)
[ "$runs" = 3 ] || fail "four builders: $runs step executions, wanted 3"
unset MODELBUILD_CACHE
echo "ok: four builders, 3 steps, each ran once"
