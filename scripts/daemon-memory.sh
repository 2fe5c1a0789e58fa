#!/usr/bin/env bash
# Peak RSS of the daemon with 8 zones playing one file (one program fanned
# out to all 8), for a 3-minute and a 3-hour MP3: decoding is streaming, so
# both must be the same (target ≤ 30 MB). Each run lasts SECONDS. Exits
# non-zero if the daemon fails or does not stop cleanly.
#
#   scripts/netns.sh scripts/daemon-memory.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "daemon-memory.sh sends multicast: run it as scripts/netns.sh scripts/daemon-memory.sh" >&2
  exit 1
fi
secs=${1:-60}
cargo build --release --offline --locked --bin loa >/dev/null 2>&1
LOA=target/release/loa
work=target/daemon-memory
mkdir -p "$work/media"
for minutes in 3 180; do
  f="$work/media/speech-like-${minutes}min.mp3"
  [ -s "$f" ] || ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i "anoisesrc=color=pink:amplitude=0.2:duration=$((minutes * 60)):sample_rate=44100" \
    -ac 2 -c:a libmp3lame -b:a 64k "$f"
done
{
  printf '[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
  printf '[daemon]\nsocket = "%s/loa.sock"\nstate_dir = "%s/state"\nmedia_roots = ["%s/media"]\n' "$PWD/$work" "$PWD/$work" "$PWD/$work"
  for z in 1 2 3 4 5 6 7 8; do
    printf '[[zone]]\nname = "z%d"\ngroup = "239.255.94.%d:5004"\n' "$z" "$z"
  done
} > "$work/loa.toml"
printf "%-26s %s\n" "8 zones playing" "daemon VmHWM after ${secs} s"
for minutes in 3 180; do
  rm -rf "$work/state"
  $LOA serve --config "$work/loa.toml" 2> "$work/loa.log" &
  pid=$!
  trap 'kill $pid 2>/dev/null || true' EXIT
  for _ in $(seq 100); do $LOA status --socket "$work/loa.sock" >/dev/null 2>&1 && break; sleep 0.1; done
  $LOA play --socket "$work/loa.sock" --zones all "$PWD/$work/media/speech-like-${minutes}min.mp3" >/dev/null
  sleep "$secs"
  rss=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" || { echo "daemon-memory: the daemon exited with status $? after SIGTERM: $(tail -3 "$work/loa.log")" >&2; exit 1; }
  [ -n "$rss" ] || { echo "daemon-memory: no VmHWM for the daemon" >&2; exit 1; }
  awk -v m="$minutes" -v rss="$rss" 'BEGIN { printf "%-26s %.1f MB\n", m " min MP3", rss / 1024 }'
done
