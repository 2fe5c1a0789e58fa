#!/usr/bin/env bash
# The soak's own check (`make soak-check`, ≈ 2.5 min): can scripts/soak.sh
# fail, and does it pass when nothing is wrong?
#   1. a clean soak of SECONDS (default 60) must PASS;
#   2. the same soak with the daemon stopped for 1.5 s halfway
#      (--inject-stall) must FAIL, and on the checks a stall breaks: the
#      packet count, the pacer's skipped_ticks, the "pacer stalled" warning.
# The clean run judges pacing against the busy-machine targets (max ≤ 5 ms),
# so run this on a machine that is not compiling at the same time.
#
#   scripts/netns.sh scripts/soak-check.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "soak-check.sh sends multicast: run it as scripts/netns.sh scripts/soak-check.sh" >&2
  exit 1
fi
secs=${1:-60}
out=target/soak-check
mkdir -p "$out"
failed=0

echo "== clean soak, $secs s: must PASS"
clean=0
scripts/soak.sh "$secs" > "$out/clean.txt" 2>&1 || clean=$?
grep -E "FAIL|verdict" "$out/clean.txt" || true
if [ "$clean" = 0 ]; then
  echo "soak-check: the clean soak passed, as it must"
else
  echo "soak-check: the clean soak FAILED (exit status $clean; $out/clean.txt)"
  failed=1
fi

echo "== soak with the daemon stopped for 1.5 s, $secs s: must FAIL"
stalled=0
scripts/soak.sh "$secs" --inject-stall > "$out/stalled.txt" 2>&1 || stalled=$?
grep -E "FAIL|verdict|injected" "$out/stalled.txt" || true
# It must fail for the stall, not for something else.
for what in "packets, expected" "pacer skipped_ticks" "no unexpected warning"; do
  if ! grep -q "FAIL .*$what" "$out/stalled.txt"; then
    echo "soak-check: the stalled soak did not fail its '$what' check"
    failed=1
  fi
done
if [ "$stalled" = 1 ] && grep -q "^verdict: FAIL" "$out/stalled.txt"; then
  echo "soak-check: the stalled soak failed, as it must"
else
  echo "soak-check: the stalled soak did not FAIL (exit status $stalled; $out/stalled.txt)"
  failed=1
fi
echo "soak-check: $([ "$failed" = 0 ] && echo PASS || echo FAIL)"
exit "$failed"
