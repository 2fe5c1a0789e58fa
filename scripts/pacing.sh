#!/usr/bin/env bash
# Pacing of loa against GStreamer (`udpsink sync=true`) and `ffmpeg -re -f rtp`,
# sending the same file at the same time on loopback, measured from one packet
# capture (examples/rtp_timing.rs computes deviation from the ideal grid and
# drift). Run inside the private namespace: `scripts/netns.sh scripts/pacing.sh`.
#
#   scripts/pacing.sh [SECONDS] [--alone | --busy]     (default 300 s)
#
# With --alone only loa runs (the idle-machine figure); otherwise five senders
# run side by side on the same machine at the same time: loa, GStreamer and
# ffmpeg as shipped (normal priority), and GStreamer and ffmpeg again under
# `chrt -f P`, where P is the SCHED_FIFO priority loa's pacer thread runs at
# (read from the running thread, so the references get exactly what loa
# gets). --busy adds a CPU-burning process per core at normal priority for
# the whole run (the busy-machine figure, issue 6: p99 ≤ 1 ms, max ≤ 5 ms).
#
# Start-up is excluded the same way for every sender: each stream's packets
# in the first PACING_SKIP_SECS (default 5) seconds after that stream's own
# first packet are left out before its grid is fitted (rtp_timing --skip).
#
# Targets (issue 3, idle machine): loa p99 ≤ 0.1 ms, max ≤ 1 ms, drift ≤ 20 ppm
# (judged by scripts/bench-table.py). Exits non-zero if any sender or the
# capture fails, or a sender's row is missing from the result.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "pacing.sh sends multicast: run it as scripts/netns.sh scripts/pacing.sh" >&2
  exit 1
fi
secs=${1:-300}
mode=${2:-}
skip=${PACING_SKIP_SECS:-5}
work=target/pacing
mkdir -p "$work"
src="$work/tone-${secs}s.flac"
[ -s "$src" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "sine=frequency=440:duration=$secs:sample_rate=48000" -c:a flac "$src"
cargo build --release --locked --bin loa --example rtp_timing >/dev/null

cat > "$work/pacing.toml" <<TOML
[network]
interface = "127.0.0.1"
[[zone]]
name = "pace"
group = "239.255.90.1:5010"
security = "none"   # loa stream sends plain RTP only
TOML

# Every process this script starts, so an early exit leaves none behind.
pids=""
trap 'kill $pids 2>/dev/null || true' EXIT
if [ "$mode" = --busy ]; then
  for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    pids="$pids $!"
  done
fi

pcap="$work/pacing.pcapng"
rm -f "$pcap"
# Even ports 10 apart: loa and ffmpeg send RTCP on port + 1, kept out.
dumpcap -q -i lo -f "udp dst port 5010 or udp dst port 5020 or udp dst port 5030 or udp dst port 5040 or udp dst port 5050" -w "$pcap" 2>"$work/dumpcap.log" &
cap=$!
pids="$pids $cap"
sleep 2

# name:port of every sender started, and its pid, in the same order.
senders=""
sender_pids=""
start() {
  local name=$1 port=$2; shift 2
  "$@" >"$work/$name.log" 2>&1 &
  pids="$pids $!"
  senders="$senders $name:$port"
  sender_pids="$sender_pids $!"
}
gst() {
  local host=$1 port=$2
  gst-launch-1.0 -q filesrc location="$src" ! decodebin ! audioconvert ! audioresample ! \
    opusenc bitrate=32000 frame-size=20 ! rtpopuspay pt=96 ! \
    udpsink host="$host" port="$port" multicast-iface=lo ttl-mc=1 sync=true
}
ff() {
  local host=$1 port=$2
  ffmpeg -hide_banner -loglevel error -re -i "$src" -ac 1 -c:a libopus -b:a 32k -frame_duration 20 \
    -f rtp "rtp://$host:$port?localaddr=127.0.0.1&ttl=1"
}

start loa 5010 target/release/loa stream --config "$work/pacing.toml" --zone pace "$src"
loa=${sender_pids##* }
prio=""
if [ "$mode" != --alone ]; then
  # loa's pacer thread sets its own priority as it starts.
  for _ in $(seq 50); do
    prio=$(ps -L -o cls=,rtprio=,comm= -p "$loa" | awk '$3 == "loa-pacer" && $1 == "FF" { print $2 }')
    [ -n "$prio" ] && break
    sleep 0.1
  done
  start gst 5020 gst 239.255.90.2 5020
  start ffmpeg 5030 ff 239.255.90.3 5030
  if [ -n "$prio" ]; then
    export -f gst ff
    export src
    start gst-rt 5040 chrt -f "$prio" bash -c 'gst 239.255.90.4 5040'
    start ffmpeg-rt 5050 chrt -f "$prio" bash -c 'ff 239.255.90.5 5050'
  else
    echo "pacing: loa's pacer thread runs without SCHED_FIFO here, so there is no priority to give the references (run as root or with CAP_SYS_NICE)" >&2
  fi
fi

failed=0
i=0
for pid in $sender_pids; do
  i=$((i + 1))
  name=$(awk -v i="$i" '{ split($i, a, ":"); print a[1] }' <<<"$senders")
  wait "$pid" || {
    echo "pacing: sender $name failed (exit status $?); the end of $work/$name.log:" >&2
    tail -5 "$work/$name.log" >&2
    failed=1
  }
done
sleep 1
kill -INT "$cap"
wait "$cap" || { echo "pacing: the capture failed (exit status $?): $(tail -3 "$work/dumpcap.log")" >&2; failed=1; }

echo "pacing over $secs s on loopback (deviation from each sender's ideal 20 ms grid, each sender's first $skip s left out)"
[ -z "$prio" ] || echo "references marked -rt run under chrt -f $prio, the SCHED_FIFO priority of loa's pacer thread"
decode=""
for s in $senders; do decode="$decode -d udp.port==${s#*:},rtp"; done
# shellcheck disable=SC2086 # one -d option per sender
tshark -r "$pcap" $decode -Y rtp -T fields -e frame.time_epoch -e udp.dstport -e rtp.timestamp \
  2>"$work/tshark.log" > "$work/timing.tsv" || { echo "pacing: tshark failed: $(tail -3 "$work/tshark.log")" >&2; failed=1; }
target/release/examples/rtp_timing --skip "$skip" < "$work/timing.tsv" > "$work/timing.txt" || failed=1
# Ports → sender names; a sender without a row is said so, and fails the run.
awk -v senders="$senders" '
  BEGIN { n = split(senders, s, " "); for (i = 1; i <= n; i++) { split(s[i], a, ":"); name[a[2]] = a[1]; order[i] = a[2] } }
  $1 == "port" { printf "%-10s %8s %9s %9s %9s %10s\n", "sender", $2, $3, $4, $5, $6; next }
  $1 in name { printf "%-10s %8s %9s %9s %9s %10s\n", name[$1], $2, $3, $4, $5, $6; seen[$1] = 1 }
  END { for (i = 1; i <= n; i++) if (!(order[i] in seen)) { printf "%-10s not measured (no row from rtp_timing for port %s)\n", name[order[i]], order[i]; bad = 1 } exit bad }
' "$work/timing.txt" || failed=1
echo "loa's own view: $(grep '^loa:' "$work/loa.log" | tail -1)"
exit "$failed"
