#!/usr/bin/env bash
# Runs every test: compiled tests (build/tests/test_*), shell tests (tests/test_*.sh) and Python
# tests (tests/test_*.py, run with the system python3 that has numpy/scikit-learn). A test exits
# 0 to pass, 77 to report a skip (it prints why), anything else to fail. Prints one summary line.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PY=${HP_PYTHON:-/usr/bin/python3}
pass=0; fail=0; skip=0; failed=()
run_one() {
    local name=$1; shift
    local log; log=$(mktemp)
    local t0=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local dt=$((SECONDS - t0))
    case $rc in
        0) pass=$((pass + 1)); printf 'PASS  %-40s %4ss  %s\n' "$name" "$dt" \
               "$(tail -n 1 "$log" | grep -E '[0-9]+ checks' | cut -c1-90)" ;;
        77) skip=$((skip + 1)); printf 'SKIP  %-40s %s\n' "$name" "$(grep -m1 -i 'skipped' "$log")" ;;
        *) fail=$((fail + 1)); failed+=("$name"); printf 'FAIL  %-40s (exit %d)\n' "$name" "$rc"
           sed 's/^/    | /' "$log" | tail -n 60 ;;
    esac
    if [ -n "${HP_TEST_VERBOSE:-}" ]; then sed 's/^/    . /' "$log"; fi
    rm -f "$log"
}
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    run_one "$(basename "$t")" bash "$t"
done
for t in tests/test_*.py; do
    [ -f "$t" ] || continue
    run_one "$(basename "$t")" "$PY" "$t"
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
