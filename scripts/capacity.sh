#!/usr/bin/env bash
# How many distinct programs the daemon sustains in real time: N zones, N
# programs playing N different 44.1 kHz stereo MP3 files (one per zone), for
# SECONDS; then SIGTERM, and the pacer's own statistics (underruns, wake-up
# lateness p99/max, logged at shutdown) say whether it kept up. Every packet
# is also captured on lo: the send-time deviation from each zone's 20 ms grid,
# pooled over all zones (examples/rtp_timing.rs --pooled), is the on-the-wire
# figure (issue 6: p99 ≤ 1 ms with zero underruns, N ≥ 64; judged by
# scripts/bench-table.py). Exits non-zero if the daemon, the capture or the
# analysis fails, or the pacer's statistics are missing.
#
#   scripts/netns.sh scripts/capacity.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "capacity.sh sends multicast: run it as scripts/netns.sh scripts/capacity.sh" >&2
  exit 1
fi
n=${1:-64}
secs=${2:-60}
cargo build --release --offline --locked --bin loa --example rtp_timing >/dev/null 2>&1
LOA=target/release/loa
work=target/capacity
mkdir -p "$work/media"
for i in $(seq "$n"); do
  f="$work/media/prog-$i.mp3"
  [ -s "$f" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i "sine=frequency=$((200 + i * 13)):sample_rate=44100:duration=$((secs + 30))" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.05:sample_rate=44100:duration=$((secs + 30))" \
    -filter_complex amix=inputs=2 -ac 2 -c:a libmp3lame -b:a 128k "$f"
done
{
  printf '[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
  printf '[daemon]\nsocket = "%s/loa.sock"\nstate_dir = "%s/state"\nmedia_roots = ["%s/media"]\n' "$PWD/$work" "$PWD/$work" "$PWD/$work"
  for i in $(seq "$n"); do
    printf '[[zone]]\nname = "z%d"\ngroup = "239.255.%d.%d:5004"\n' "$i" $((100 + i / 200)) $((i % 200 + 1))
  done
} > "$work/loa.toml"
rm -rf "$work/state" "$work/rtp.pcap"
dumpcap -q -i lo -f "udp dst port 5004" -w "$work/rtp.pcap" 2>/dev/null &
cap=$!
sleep 1
RUST_LOG=info $LOA serve --config "$work/loa.toml" 2> "$work/loa.log" &
pid=$!
trap 'kill $pid $cap 2>/dev/null || true' EXIT
for _ in $(seq 100); do $LOA status --socket "$work/loa.sock" >/dev/null 2>&1 && break; sleep 0.1; done
for i in $(seq "$n"); do
  $LOA play --socket "$work/loa.sock" --zones "z$i" --priority scheduled "$PWD/$work/media/prog-$i.mp3" >/dev/null
done
t0=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
sleep "$secs"
t1=$(awk '{ print $14 + $15 }' "/proc/$pid/stat")
playing=$($LOA status --socket "$work/loa.sock" --json | grep -c '"state": "playing"' || true)
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
failed=0
kill -TERM "$pid"
wait "$pid" || { echo "capacity: the daemon exited with status $? after SIGTERM (see $work/loa.log)" >&2; failed=1; }
kill -INT "$cap"
wait "$cap" || { echo "capacity: the capture failed (exit status $?)" >&2; failed=1; }
trap - EXIT
stats=$(grep "pacer stopped" "$work/loa.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -1)
echo "programs: $n requested, $playing still playing after ${secs} s"
awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v s="$secs" -v rss="$rss" \
  'BEGIN { printf "daemon CPU: %.0f %% of one core (2 cores available), peak RSS %.1f MB\n", 100 * d / hz / s, rss / 1024 }'
if [ -n "$stats" ]; then
  echo "pacer: $stats"
else
  echo "capacity: no 'pacer stopped' statistics line in $work/loa.log" >&2
  failed=1
fi
# Each zone's first 5 s left out, as for every sender in scripts/pacing.sh:
# the programs start one CLI call after another.
if tshark -r "$work/rtp.pcap" -d udp.port==5004,rtp -Y rtp -T fields \
    -e frame.time_epoch -e ip.dst -e rtp.timestamp 2>"$work/tshark.log" > "$work/timing.tsv"; then
  wire=$(target/release/examples/rtp_timing --pooled --skip 5 < "$work/timing.tsv") || failed=1
  echo "on the wire (each zone's first 5 s left out): ${wire:-not measured (rtp_timing failed)}"
else
  echo "capacity: tshark failed: $(tail -3 "$work/tshark.log")" >&2
  echo "on the wire: not measured (tshark failed)"
  failed=1
fi
exit "$failed"
