#!/usr/bin/env bash
# Every performance figure of issues 6 and 7 in one run, as one table: loa against
# the reference each target names, measured in this same run on this machine.
#
#   scripts/bench.sh            (builds, then re-runs itself in the private
#                                network namespace; ≈ 12 minutes)
#
# Environment: BENCH_PACING_SECS (default 120), BENCH_CAPACITY (64),
# BENCH_CAPACITY_SECS (60), BENCH_TRANSCODE_SECS (300).
# Each part's full output is kept in target/bench/*.txt; the parts are the
# scripts next to this one and can be run alone (see README "Performance").
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  cargo build --release --locked --bin loa --example rtp_timing --bench transcode
  cargo test --release --locked --test daemon --no-run
  exec scripts/netns.sh "$0" "$@"
fi
pacing_secs=${BENCH_PACING_SECS:-120}
cap_n=${BENCH_CAPACITY:-64}
cap_secs=${BENCH_CAPACITY_SECS:-60}
transcode_secs=${BENCH_TRANSCODE_SECS:-300}
out=target/bench
mkdir -p "$out"
step() { echo "[$(date +%T)] $*" >&2; }

step "transcode ($transcode_secs s MP3) vs ffmpeg -threads 1 and libopus alone"
scripts/bench-vs-ffmpeg.sh "$transcode_secs" | tee "$out/transcode.txt" >&2
step "capacity: $cap_n zones × $cap_n programs for $cap_secs s"
scripts/capacity.sh "$cap_n" "$cap_secs" | tee "$out/capacity.txt" >&2
step "pacing, idle machine (loa alone), $pacing_secs s"
scripts/pacing.sh "$pacing_secs" --alone | tee "$out/pacing-idle.txt" >&2
step "pacing, busy machine (a CPU burner per core; loa, GStreamer, ffmpeg side by side), $pacing_secs s"
scripts/pacing.sh "$pacing_secs" --busy | tee "$out/pacing-busy.txt" >&2
step "daemon memory with 8 zones: 3-minute vs 3-hour file"
scripts/daemon-memory.sh 60 | tee "$out/memory.txt" >&2
step "scheduled start offset and preemption latency, machine busy"
scripts/daemon-figures.sh --busy 12 5 | tee "$out/daemon-busy.txt" >&2
step "loa live: input → speaker output latency, 20 clicks"
scripts/live-latency.py 20 | tee "$out/live-latency.txt" >&2

# ---------------------------------------------------------------- the table
num() { grep -o "$1[ =:]*[0-9.]*" | head -1 | grep -o '[0-9.]*$'; }
row() { printf "| %s | %s | %s | %s | %s |\n" "$@"; }
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == ">=") ? v + 0 >= t + 0 : v + 0 <= t + 0; print ok ? "met" : "**not met**" }'; }

echo
echo "## loa performance, $(date +%F), $(nproc) cores ($(uname -m)), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
row "figure" "loa" "reference (same run)" "ratio / value" "target"
row "---" "---" "---" "---" "---"
for case in mono stereo; do
  line=$(grep "^$case" "$out/transcode.txt")
  read -r _ _ _ loa ff enc r_ff r_enc <<<"$line"
  row "transcode $case (MP3 → Opus), real-time factor" "$loa" "ffmpeg -threads 1 $ff" "$r_ff×" "≥ 1.5× — $(verdict "$r_ff" 1.5 '>=')"
  row "transcode $case vs libopus encode alone" "$loa" "libopus $enc" "$r_enc×" "≥ 0.85× — $(verdict "$r_enc" 0.85 '>=')"
done
cap_play=$(grep -o '[0-9]* still playing' "$out/capacity.txt" | grep -o '^[0-9]*')
cap_under=$(grep '^pacer:' "$out/capacity.txt" | num underruns)
cap_p99=$(grep '^on the wire' "$out/capacity.txt" | num p99_ms)
cap_max=$(grep '^on the wire' "$out/capacity.txt" | num max_ms)
cap_cpu=$(grep -o 'CPU: [0-9]* %' "$out/capacity.txt" | grep -o '[0-9]*')
row "concurrent programs, $cap_secs s" "$cap_play of $cap_n playing, $cap_under underruns, wire p99 $cap_p99 ms (max $cap_max), $cap_cpu % of a core" "—" "N = $cap_n" "N ≥ 64, 0 underruns, p99 ≤ 1 ms — $( [ "$cap_play" = "$cap_n" ] && [ "$cap_under" = 0 ] && verdict "$cap_p99" 1 '<=' || echo '**not met**')"
for run in idle busy; do
  f="$out/pacing-$run.txt"
  read -r _ _ _ l99 lmax _ <<<"$(grep '^loa' "$f")"
  ref="—"
  if grep -q '^gst' "$f"; then
    read -r _ _ _ g99 gmax _ <<<"$(grep '^gst' "$f")"
    read -r _ _ _ f99 fmax _ <<<"$(grep '^ffmpeg' "$f")"
    ref="GStreamer udpsink p99 $g99 / max $gmax ms; ffmpeg -re p99 $f99 / max $fmax ms"
  fi
  if [ "$run" = idle ]; then
    row "pacing on the wire, idle machine" "p99 $l99 ms, max $lmax ms" "$ref" "—" "p99 ≤ 0.1 ms — $(verdict "$l99" 0.1 '<=')"
  else
    row "pacing on the wire, busy machine" "p99 $l99 ms, max $lmax ms" "$ref" "—" "p99 ≤ 1 ms — $(verdict "$l99" 1 '<='), max ≤ 5 ms — $(verdict "$lmax" 5 '<=')"
  fi
done
m3=$(grep '^3 min' "$out/memory.txt" | grep -o '[0-9.]* MB' | grep -o '[0-9.]*')
m180=$(grep '^180 min' "$out/memory.txt" | grep -o '[0-9.]* MB' | grep -o '[0-9.]*')
row "daemon peak RSS, 8 zones playing" "3-hour file $m180 MB" "3-minute file $m3 MB" "$(awk -v a="$m180" -v b="$m3" 'BEGIN { printf "%.2f×", a / b }')" "≤ 30 MB, independent of length — $(verdict "$m180" 30 '<=')"
off=$(grep 'offset over' "$out/daemon-busy.txt" || true)
pre=$(grep '^preemption latency' "$out/daemon-busy.txt" || true)
off_max=$(grep -o 'max [0-9.]* ms' <<<"$off" | grep -o '[0-9.]*' || echo '?')
pre_max=$(grep -o 'max [0-9.]* ms' <<<"$pre" | grep -o '[0-9.]*' || echo '?')
row "scheduled start offset, machine busy" "${off#*: }" "cron instant" "—" "≤ 50 ms — $(verdict "$off_max" 50 '<=')"
row "emergency preemption latency, machine busy" "${pre#*: }" "CLI command" "—" "≤ 100 ms — $(verdict "$pre_max" 100 '<=')"
live=$(grep '^live input' "$out/live-latency.txt" || true)
live_max=$(grep -o 'max [0-9.]* ms' <<<"$live" | grep -o '[0-9.]*' || echo '?')
live_fig=$(sed 's/ (target.*//' <<<"${live#*clicks: }")
row "loa live: input → speaker output, 60 ms jitter buffer" "$live_fig" "click written to loa live --stdin" "—" "≤ 150 ms — $(verdict "$live_max" 150 '<=')"
