#!/usr/bin/env bash
# Peak memory of `loa stream` for a 3-minute and a 3-hour file: the pipeline
# is streaming, so both must be the same (and ≤ 30 MB). Each stream runs for
# SECONDS (default 60) of real time and is then stopped with SIGINT; VmHWM is
# the process's peak resident set. The transcode bench also decodes the whole
# 3-hour file unpaced and reports its peak RSS, which covers the end of the
# file without waiting three hours.
#
#   scripts/netns.sh scripts/memory.sh [SECONDS]
#
# Exits non-zero if loa stream or the bench binary fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "memory.sh sends multicast: run it as scripts/netns.sh scripts/memory.sh" >&2
  exit 1
fi
secs=${1:-60}
work=target/memory
mkdir -p "$work"
cargo build --release --locked --bin loa --bench transcode >/dev/null 2>&1
bench=$(ls -t target/release/deps/transcode-* | grep -v '\.d$' | head -1)

for minutes in 3 180; do
  f="$work/speech-like-${minutes}min.mp3"
  [ -s "$f" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i "anoisesrc=color=pink:amplitude=0.2:duration=$((minutes * 60)):sample_rate=44100" \
    -ac 2 -c:a libmp3lame -b:a 64k "$f"
done

cat > "$work/memory.toml" <<TOML
[network]
interface = "127.0.0.1"
[[zone]]
name = "mem"
group = "239.255.91.1:5040"
security = "none"   # loa stream sends plain RTP only
TOML

printf "%-22s %16s %22s\n" file "loa stream VmHWM" "unpaced decode maxrss"
for minutes in 3 180; do
  f="$work/speech-like-${minutes}min.mp3"
  target/release/loa stream --config "$work/memory.toml" --zone mem "$f" 2>"$work/loa.log" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  sleep "$secs"
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
  kill -INT $pid
  wait $pid || { echo "memory: loa stream exited with status $? after SIGINT: $(tail -3 "$work/loa.log")" >&2; exit 1; }
  [ -n "$hwm" ] || { echo "memory: no VmHWM for loa stream" >&2; exit 1; }
  rss=$("$bench" full "$f" 1 32000 | sed -E 's/.*maxrss_kb=([0-9]+).*/\1/')
  awk -v n="${minutes} min MP3" -v h="$hwm" -v r="$rss" 'BEGIN { printf "%-22s %13.1f MB %19.1f MB\n", n, h/1024, r/1024 }'
done
