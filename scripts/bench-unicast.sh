#!/usr/bin/env bash
# Joined speakers over unicast SRTP (issue 15, point 8), each figure against
# a reference in the same run:
#  1. time from join to first audio: with a program already on air, a
#     speaker joins (`loa speaker --join`'s own code, loa::speaker::join)
#     and the clock runs from the start of its TCP connect to the kernel
#     receive time of the first packet that verifies; 10 joins, one after
#     the other (median, max);
#  2. N speakers on one zone: one daemon, one SRTP zone playing one
#     program; first ONE joined speaker alone (the reference), then N in
#     all, every one a socket of examples/unicast_speakers in this
#     namespace that keeps its SRTCP keepalives going and verifies its
#     stream (every datagram until one verifies, then 1 in 10: libsrtp's
#     NSS crypto would otherwise make this process the bottleneck at
#     50 000 packets a second; the rest are taken by clear header under the
#     verified SSRC). Per receiver, each verified packet's kernel receive time
#     (SO_TIMESTAMPNS) is compared with that receiver's own ideal 20 ms grid
#     (least-squares fit of arrival on RTP timestamp, as
#     examples/rtp_timing does for a capture) and the deviations of all
#     receivers are pooled (p50/p99/max); lost packets from each one's
#     sequence numbers; the daemon's CPU from /proc; skipped ticks and
#     unsent packets from `loa status`; underruns from the pacer's own
#     statistics, logged when the daemon stops (the whole run).
# scripts/bench-table.py judges the lines this prints. Exits non-zero if a
# step fails or a figure is missing.
#
#   scripts/netns.sh scripts/bench-unicast.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "bench-unicast.sh sends to speakers: run it as scripts/netns.sh scripts/bench-unicast.sh" >&2
  exit 1
fi
n=${1:-1000}
secs=${2:-30}
ref_secs=15
first_audio=10
cargo build --release --offline --locked --bin loa --example unicast_speakers >/dev/null 2>&1
LOA=target/release/loa
work=target/bench-unicast
rm -rf "$work/state" "$work/credentials"
mkdir -p "$work/media" "$work/credentials"
failed=0

# Each speaker holds a UDP socket and a TLS connection in the receiver
# process, and the daemon one connection per speaker.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((2 * n + 256)) ]; then
  echo "bench-unicast: $n speakers need $((2 * n + 256)) open files, this shell may have $(ulimit -n)" >&2
  exit 1
fi

f="$work/media/tone.mp3"
[ -s "$f" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi \
  -i "sine=frequency=440:sample_rate=48000:duration=600" -ac 1 -c:a libmp3lame -b:a 96k "$f"
{
  printf '[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
  printf '[daemon]\nsocket = "%s/loa.sock"\nstate_dir = "%s/state"\nmedia_roots = ["%s/media"]\n' "$PWD/$work" "$PWD/$work" "$PWD/$work"
  printf '[speakers]\nlisten = "127.0.0.1:7100"\nkeepalive = "5s"\nmissed_keepalives = 3\n'
  printf '[[zone]]\nname = "z"\ngroup = "239.255.203.1:5004"\n'
} > "$work/loa.toml"
RUST_LOG=info $LOA serve --config "$work/loa.toml" 2> "$work/loa.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do $LOA status --socket "$work/loa.sock" >/dev/null 2>&1 && break; sleep 0.1; done
$LOA play --socket "$work/loa.sock" --zones z "$PWD/$f" >/dev/null
# On air (the encoder's lookahead is queued) before anyone joins.
sleep 2
# The receivers stand for N separate boxes: nice -10 keeps the machine's
# other work (compiles) from starving them, which would show as their own
# sockets' drops (counted apart: socket_drops) and late keepalives. The
# pacer thread is SCHED_FIFO and above them either way.
echo "== $n joined speakers on one SRTP zone (unicast), reference: 1 speaker alone on it; $first_audio timed joins"
nice -n -10 target/release/examples/unicast_speakers --socket "$work/loa.sock" --listen 127.0.0.1:7100 --zone z \
  --dir "$work/credentials" --daemon-pid "$pid" --count "$n" --first-audio "$first_audio" \
  --reference-secs "$ref_secs" --secs "$secs" || failed=1
kill -TERM "$pid"
wait "$pid" || { echo "bench-unicast: the daemon exited with status $? after SIGTERM (see $work/loa.log)" >&2; failed=1; }
trap - EXIT
stats=$(grep "pacer stopped" "$work/loa.log" | sed 's/\x1b\[[0-9;]*m//g' | tail -1)
if [ -n "$stats" ]; then
  echo "pacer (whole run): $stats"
else
  echo "bench-unicast: no 'pacer stopped' statistics line in $work/loa.log" >&2
  failed=1
fi
exit "$failed"
