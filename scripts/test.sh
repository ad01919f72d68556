#!/usr/bin/env bash
# npm test: static checks (lint-core, tsc, deno check), then the test suite under Node, Bun and
# Deno. Every step runs even if an earlier one failed; the exit status is non-zero if any failed.
# The last line is "N passed, N failed", summed over the runtimes (a failed static check counts
# as one failure, so the line never reads "0 failed" when the run failed).
#
# Usage: scripts/test.sh [path ...]            test files or dirs (default: test)
# Env:   SLOTGATE_TEST_RUNTIMES=node,bun,deno  runtimes to run (default: all three)
#        SLOTGATE_TEST_FILTER=regex            only tests whose name matches
#        SLOTGATE_TEST_STATIC=0                skip the static checks
#        SLOTGATE_TEST_TIMEOUT=seconds         wall-clock cap per runtime (default 1500)
# shellcheck disable=SC2317 # the parse_* functions are called indirectly, through $parser
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BIN=node_modules/.bin
RUNTIMES=",${SLOTGATE_TEST_RUNTIMES:-node,bun,deno},"
FILTER=${SLOTGATE_TEST_FILTER:-}
CAP=${SLOTGATE_TEST_TIMEOUT:-1500}
PATHS=("$@")
[ ${#PATHS[@]} -eq 0 ] && PATHS=(test)

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
STATUS=0
PASSED=0
FAILED=0
SUMMARY=()

# A hung runner must not eat CI's whole budget: cap each one when coreutils' timeout exists.
capped() {
  if command -v timeout >/dev/null 2>&1; then timeout -k 10 "$CAP" "$@"; else "$@"; fi
}

# static NAME CMD...: run a check; a failure counts as one failed test.
static() {
  local name=$1 start=$SECONDS
  shift
  echo "==> $name"
  if "$@"; then
    SUMMARY+=("$name: ok ($((SECONDS - start))s)")
  else
    SUMMARY+=("$name: FAILED ($((SECONDS - start))s)")
    STATUS=1
    FAILED=$((FAILED + 1))
  fi
}

# runtime NAME PARSER CMD...: run a test runner, tee its output, parse its own summary.
runtime() {
  local name=$1 parser=$2 start=$SECONDS log="$LOGS/$1.log" rc counts pass fail
  shift 2
  echo "==> $name: $*"
  capped "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  counts=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | "$parser")
  pass=${counts% *}
  fail=${counts#* }
  # A crash or timeout may print no summary (or a clean one): never report it as 0 failed.
  if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
  PASSED=$((PASSED + pass))
  FAILED=$((FAILED + fail))
  if [ "$rc" -eq 0 ]; then
    SUMMARY+=("$name: ok, $pass passed, $fail failed ($((SECONDS - start))s)")
  else
    STATUS=1
    SUMMARY+=("$name: FAILED (exit $rc), $pass passed, $fail failed ($((SECONDS - start))s)")
  fi
}

# Parsers read a runner's (ANSI-stripped) output on stdin and print "PASSED FAILED".
# node (tap "# pass N" or spec "ℹ pass N"); cancelled tests count as failed.
parse_node() {
  awk '/^(# |ℹ )pass [0-9]+$/ {p=$3} /^(# |ℹ )(fail|cancelled) [0-9]+$/ {f[$2]=$3}
       END {print p+0, f["fail"]+f["cancelled"]}'
}
# bun: " N pass" / " N fail" at the end.
parse_bun() {
  awk '/^ *[0-9]+ pass$/ {p=$1} /^ *[0-9]+ fail$/ {f=$1} END {print p+0, f+0}'
}
# deno: "ok | N passed (X steps) | F failed (Y steps) | ...". describe/it become a test with
# steps, so tests and steps are added up (a describe block then counts as one test too).
parse_deno() {
  awk '/^(ok|FAILED) \| / {
         p=0; f=0
         if (match($0, /[0-9]+ passed( \([0-9]+ steps?\))?/)) { split(substr($0, RSTART, RLENGTH), a, /[^0-9]+/); p=a[1]+a[2] }
         if (match($0, /[0-9]+ failed( \([0-9]+ steps?\))?/)) { split(substr($0, RSTART, RLENGTH), a, /[^0-9]+/); f=a[1]+a[2] }
       }
       END {print p+0, f+0}'
}

if [ "${SLOTGATE_TEST_STATIC:-1}" != 0 ]; then
  static lint-core npx tsx scripts/lint-core.ts
  # adapters/shared serves every adapter, so it may name no runtime's globals either.
  static "lint-core adapters/shared" npx tsx scripts/lint-core.ts adapters/shared
  static tsc "$BIN/tsc" -p tsconfig.json --noEmit
  # adapters/deno is excluded from tsconfig (it uses Deno's globals); deno checks it instead.
  shopt -s nullglob
  DENO_FILES=(adapters/deno/*.ts)
  shopt -u nullglob
  if [ ${#DENO_FILES[@]} -gt 0 ]; then static "deno check" "$BIN/deno" check "${DENO_FILES[@]}"; fi
fi

if [[ $RUNTIMES == *,node,* ]]; then
  # Node 20's --test does not expand globs itself, so list the files.
  mapfile -t NODE_FILES < <(find "${PATHS[@]}" -type f -name '*.test.ts' | sort)
  # No --test-force-exit: Node's runner can then drop the verdicts of a file's last tests without a
  # word (nodejs/node#64833; seen here as 748 of 760). A file that leaves a handle open hangs
  # instead, and the cap above turns that into a failure.
  NODE_ARGS=(--import tsx --test --test-concurrency=1 --test-reporter=spec)
  [ -n "$FILTER" ] && NODE_ARGS+=("--test-name-pattern=$FILTER")
  if [ ${#NODE_FILES[@]} -gt 0 ]; then
    runtime node parse_node node "${NODE_ARGS[@]}" "${NODE_FILES[@]}"
  else
    SUMMARY+=("node: no test files in ${PATHS[*]}")
  fi
fi

if [[ $RUNTIMES == *,bun,* ]]; then
  # bun treats arguments without ./ or / as name filters, not paths.
  BUN_PATHS=()
  for p in "${PATHS[@]}"; do [[ $p == /* || $p == ./* ]] && BUN_PATHS+=("$p") || BUN_PATHS+=("./$p"); done
  BUN_ARGS=(test --timeout 120000)
  [ -n "$FILTER" ] && BUN_ARGS+=(--test-name-pattern "$FILTER")
  runtime bun parse_bun "$BIN/bun" "${BUN_ARGS[@]}" "${BUN_PATHS[@]}"
fi

if [[ $RUNTIMES == *,deno,* ]]; then
  DENO_ARGS=(test -A)
  [ -n "$FILTER" ] && DENO_ARGS+=(--filter "$FILTER")
  runtime deno parse_deno "$BIN/deno" "${DENO_ARGS[@]}" "${PATHS[@]}"
fi

echo
echo "==> summary"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "$PASSED passed, $FAILED failed"
exit $STATUS
