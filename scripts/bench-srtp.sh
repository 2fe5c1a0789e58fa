#!/usr/bin/env bash
# What SRTP costs, each figure against plain RTP in the same run (issue 15,
# point 8):
#  1. per packet: examples/srtp_cost builds N RTP packets plain (the
#     reference), then builds and protects them with each suite; the ratio
#     is build+protect over build alone;
#  2. pacing through the daemon: one daemon sends one program to N SRTP
#     zones and N plain zones at once (same pacer thread, same load); every
#     packet is captured on lo and each side's send-time deviation from its
#     zones' 20 ms grids is pooled (examples/rtp_timing.rs --pooled), with
#     the pacer's own statistics (underruns) logged at shutdown.
# scripts/bench-table.py judges the lines this prints. Exits non-zero if a
# step fails or a figure is missing.
#
#   scripts/netns.sh scripts/bench-srtp.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "bench-srtp.sh sends multicast: run it as scripts/netns.sh scripts/bench-srtp.sh" >&2
  exit 1
fi
n=${1:-8}
secs=${2:-60}
cargo build --release --offline --locked --bin loa --example rtp_timing --example srtp_cost >/dev/null 2>&1
LOA=target/release/loa
work=target/bench-srtp
mkdir -p "$work/media"
failed=0

echo "== SRTP per packet (examples/srtp_cost, 200000 packets)"
target/release/examples/srtp_cost 200000 || failed=1

f="$work/media/tone.mp3"
[ -s "$f" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "sine=frequency=440:sample_rate=44100:duration=$((secs + 30))" -ac 1 -c:a libmp3lame -b:a 96k "$f"
{
  printf '[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
  printf '[daemon]\nsocket = "%s/loa.sock"\nstate_dir = "%s/state"\nmedia_roots = ["%s/media"]\n' "$PWD/$work" "$PWD/$work" "$PWD/$work"
  for i in $(seq "$n"); do
    printf '[[zone]]\nname = "s%d"\ngroup = "239.255.201.%d:5004"\n' "$i" "$i"
    printf '[[zone]]\nname = "p%d"\ngroup = "239.255.202.%d:5004"\nsecurity = "none"\n' "$i" "$i"
  done
} > "$work/loa.toml"
zones=$(for i in $(seq "$n"); do printf 's%d,p%d,' "$i" "$i"; done)
zones=${zones%,}
rm -rf "$work/state" "$work/rtp.pcap"
dumpcap -q -i lo -f "udp dst port 5004" -w "$work/rtp.pcap" 2>/dev/null &
cap=$!
sleep 1
RUST_LOG=info $LOA serve --config "$work/loa.toml" 2> "$work/loa.log" &
pid=$!
trap 'kill $pid $cap 2>/dev/null || true' EXIT
for _ in $(seq 100); do $LOA status --socket "$work/loa.sock" >/dev/null 2>&1 && break; sleep 0.1; done
$LOA play --socket "$work/loa.sock" --zones "$zones" "$PWD/$f" >/dev/null
sleep "$secs"
kill -TERM "$pid"
wait "$pid" || { echo "bench-srtp: the daemon exited with status $? after SIGTERM (see $work/loa.log)" >&2; failed=1; }
kill -INT "$cap"
wait "$cap" || { echo "bench-srtp: the capture failed (exit status $?)" >&2; failed=1; }
trap - EXIT
echo "== pacing through the daemon: $n SRTP zones and $n plain zones, one program, $secs s"
stats=$(grep "pacer stopped" "$work/loa.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -1)
if [ -n "$stats" ]; then
  echo "pacer: $stats"
else
  echo "bench-srtp: no 'pacer stopped' statistics line in $work/loa.log" >&2
  failed=1
fi
if tshark -r "$work/rtp.pcap" -d udp.port==5004,rtp -Y rtp -T fields \
    -e frame.time_epoch -e ip.dst -e rtp.timestamp 2>"$work/tshark.log" > "$work/timing.tsv"; then
  for side in srtp:239.255.201. plain:239.255.202.; do
    name=${side%%:*}
    prefix=${side#*:}
    wire=$(awk -F'\t' -v p="$prefix" 'index($2, p) == 1' "$work/timing.tsv" \
      | target/release/examples/rtp_timing --pooled --skip 5) || failed=1
    echo "on the wire $name (first 5 s left out): ${wire:-not measured (rtp_timing failed)}"
  done
else
  echo "bench-srtp: tshark failed: $(tail -3 "$work/tshark.log")" >&2
  failed=1
fi
exit "$failed"
