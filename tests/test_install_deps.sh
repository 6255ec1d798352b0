#!/usr/bin/env bash
# test_install_deps.sh: scripts/install_deps.sh waits for another apt/dpkg process that holds
# the lock (with a message) instead of failing, gives up after HP_APT_LOCK_WAIT seconds, and
# fails at once on any other apt error. apt-get, dpkg-query and sudo are fakes on PATH: nothing
# is installed and no root is needed.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir -p "$tmp/bin"
# Every package present except clang, so the script goes on to apt.
cat >"$tmp/bin/dpkg-query" <<'SH'
#!/bin/sh
for a; do p=$a; done
[ "$p" = clang ] && exit 1
printf 'install ok installed'
SH
# apt-get: fails with apt's lock message while $FAKE_LOCKED_CALLS > calls so far, then with
# $FAKE_OTHER_ERROR if set, else succeeds.
cat >"$tmp/bin/apt-get" <<'SH'
#!/bin/sh
n=$(cat "$FAKE_COUNT" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" >"$FAKE_COUNT"
if [ "$n" -le "$FAKE_LOCKED_CALLS" ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
  exit 100
fi
[ -n "${FAKE_OTHER_ERROR:-}" ] && { echo "E: $FAKE_OTHER_ERROR" >&2; exit 100; }
echo "apt-get $*" >>"$FAKE_LOG"
exit 0
SH
printf '#!/bin/sh\nexec "$@"\n' >"$tmp/bin/sudo"
chmod +x "$tmp/bin/"*
run() { env PATH="$tmp/bin:$PATH" FAKE_COUNT="$tmp/count" FAKE_LOG="$tmp/log" HP_APT_LOCK_POLL=0.05 "$@" bash scripts/install_deps.sh; }

# 1. Lock held for the first 3 calls: waits with a message, then installs.
rm -f "$tmp/count" "$tmp/log"
out=$(run FAKE_LOCKED_CALLS=3 HP_APT_LOCK_WAIT=5 2>&1) || fail "held lock then released: exit $?: $out"
grep -q "another apt/dpkg process holds the lock" <<<"$out" || fail "no waiting message: $out"
grep -q "held by process 4242" <<<"$out" || fail "the message does not say who holds the lock: $out"
grep -q "lock released after" <<<"$out" || fail "no release message: $out"
grep -q "deps: done" <<<"$out" || fail "did not finish: $out"
grep -q "install -y -qq --no-install-recommends clang" "$tmp/log" || fail "clang not installed: $(cat "$tmp/log")"
echo "ok: waits for a held lock, then installs"

# 2. Lock never released: gives up after HP_APT_LOCK_WAIT seconds, non-zero, saying why.
rm -f "$tmp/count" "$tmp/log"
t0=$(date +%s)
out=$(run FAKE_LOCKED_CALLS=1000000 HP_APT_LOCK_WAIT=0.5 2>&1) && fail "a lock never released passed: $out"
[ $(($(date +%s) - t0)) -lt 20 ] || fail "the wait was not bounded"
grep -q "still held after 0.5s" <<<"$out" || fail "no give-up message: $out"
echo "ok: gives up after the bound"

# 3. Any other apt error fails at once, without waiting.
rm -f "$tmp/count" "$tmp/log"
out=$(run FAKE_LOCKED_CALLS=0 FAKE_OTHER_ERROR="Unable to locate package clang" HP_APT_LOCK_WAIT=60 2>&1) \
  && fail "an apt error passed: $out"
grep -q "Unable to locate package clang" <<<"$out" || fail "apt's error not shown: $out"
grep -q "waiting" <<<"$out" && fail "waited on an error that is not the lock: $out"
[ "$(cat "$tmp/count")" = 1 ] || fail "retried a non-lock error ($(cat "$tmp/count") calls)"
echo "ok: other apt errors fail at once"
