#!/usr/bin/env bash
# Every performance figure of issues 6, 7 and 15 in one run, as one table: loa against
# the reference each target names, measured in this same run on this machine.
#
#   scripts/bench.sh            (builds, then re-runs itself in the private
#                                network namespace; ≈ 16 minutes)
#
# Environment: BENCH_PACING_SECS (default 120), BENCH_CAPACITY (64),
# BENCH_CAPACITY_SECS (60), BENCH_TRANSCODE_SECS (300), BENCH_TRANSCODE_RUNS (5),
# BENCH_SRTP_ZONES (8 SRTP + 8 plain), BENCH_SRTP_SECS (60), BENCH_UNICAST
# (1000 joined speakers), BENCH_UNICAST_SECS (30).
# Each part's full output is kept in target/bench/NAME.txt and its exit
# status in NAME.status; the parts are the scripts next to this one and can
# be run alone (see README "Performance"). The table is built from those
# files by scripts/bench-table.py, which can be re-run on them alone:
# every target a row names is judged, and a figure that is missing,
# unparsable or from a failed part reads "not measured (reason)" and makes
# the run exit 1 (a measured target missed reads "**not met**").
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  cargo build --release --locked --bin loa --example rtp_timing --example srtp_cost --example unicast_speakers --bench transcode
  cargo test --release --locked --test daemon --no-run
  exec scripts/netns.sh "$0" "$@"
fi
pacing_secs=${BENCH_PACING_SECS:-120}
cap_n=${BENCH_CAPACITY:-64}
cap_secs=${BENCH_CAPACITY_SECS:-60}
transcode_secs=${BENCH_TRANSCODE_SECS:-300}
transcode_runs=${BENCH_TRANSCODE_RUNS:-5}
srtp_zones=${BENCH_SRTP_ZONES:-8}
srtp_secs=${BENCH_SRTP_SECS:-60}
unicast_n=${BENCH_UNICAST:-1000}
unicast_secs=${BENCH_UNICAST_SECS:-30}
out=target/bench
mkdir -p "$out"
# A figure must come from this run: nothing of an earlier one is left to read.
rm -f "$out"/*.txt "$out"/*.status
step() { echo "[$(date +%T)] $*" >&2; }
# Runs one part; its output goes to $out/NAME.txt and its exit status to
# $out/NAME.status. A failed part does not stop the others: the table reads
# its figures as "not measured (part NAME failed …)" and the run exits 1.
part() {
  local name=$1; shift
  local rc=0
  "$@" > "$out/$name.txt" || rc=$?
  echo "$rc" > "$out/$name.status"
  cat "$out/$name.txt" >&2
  [ "$rc" = 0 ] || step "part $name FAILED (exit status $rc)"
}

step "transcode ($transcode_secs s MP3, $transcode_runs runs each) vs ffmpeg -threads 1 and libopus alone"
part transcode scripts/bench-vs-ffmpeg.sh "$transcode_secs" "$transcode_runs"
step "capacity: $cap_n zones × $cap_n programs for $cap_secs s"
part capacity scripts/capacity.sh "$cap_n" "$cap_secs"
step "pacing, idle machine (loa alone), $pacing_secs s"
part pacing-idle scripts/pacing.sh "$pacing_secs" --alone
step "pacing, busy machine (a CPU burner per core; loa, GStreamer and ffmpeg as shipped and under chrt -f), $pacing_secs s"
part pacing-busy scripts/pacing.sh "$pacing_secs" --busy
step "daemon memory with 8 zones: 3-minute vs 3-hour file"
part memory scripts/daemon-memory.sh 60
step "scheduled start offset and preemption latency, machine busy"
part daemon-busy scripts/daemon-figures.sh --busy 12 5
step "loa live: input → speaker output latency, 20 clicks"
part live-latency scripts/live-latency.py 20
step "SRTP: cost per packet vs plain RTP, and pacing of $srtp_zones SRTP + $srtp_zones plain zones for $srtp_secs s"
part srtp scripts/bench-srtp.sh "$srtp_zones" "$srtp_secs"
step "joined speakers: $unicast_n on one SRTP zone (unicast) for $unicast_secs s against 1 alone, and join to first audio"
part unicast scripts/bench-unicast.sh "$unicast_n" "$unicast_secs"

# The table, and the verdicts, from the parts' files alone
# (scripts/bench-table.py; exit 1 if any figure was not measured).
exec scripts/bench-table.py "$out" \
  "loa performance, $(date +%F), $(nproc) cores ($(uname -m)), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
