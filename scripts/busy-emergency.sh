#!/usr/bin/env bash
# An emergency on a busy daemon, measured on the release build through its
# real surfaces (issue: "no decision may wait for another program's
# preparation"):
#   1. emergency latency, `loa play --priority emergency` to its first
#      packet on the zone (as scripts/daemon-figures.sh measures it), on an
#      idle daemon, then while PROGRAMS programs on distinct never-played
#      files start one after another with `loa play` (first plays: the
#      loudness cache cannot help);
#   2. the time those starts take, per program.
#
#   scripts/netns.sh scripts/busy-emergency.sh [PROGRAMS] [EMERGENCIES]
#
# Environment: ZONES (16; program i plays on zone i mod ZONES, the
# emergencies on zone 0), FILE_SECONDS (120; length of each program's MP3).
# The MP3s are made once into target/busy-media-FILE_SECONDS/ and reused:
# each run's daemon has a fresh state_dir, so every play is a first play.
# --busy adds a CPU-burning process per core at normal priority.
set -euo pipefail
busy=""
if [ "${1:-}" = --busy ]; then busy=1; shift; fi
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "busy-emergency.sh sends multicast: run it as scripts/netns.sh scripts/busy-emergency.sh" >&2
  exit 1
fi
programs=${1:-60}
emergencies=${2:-5}
zones=${ZONES:-16}
seconds=${FILE_SECONDS:-120}

cargo build --release --offline --locked --bin loa >/dev/null 2>&1
cargo test --release --offline --locked --test busy_emergency --no-run >/dev/null 2>&1

media="target/busy-media-$seconds"
mkdir -p "$media"
freqs=(400 600 800 1000 1200)
for i in $(seq 0 $((programs - 1))); do
  out=$(printf '%s/prog-%03d.mp3' "$media" "$i")
  [ -s "$out" ] && continue
  # A tone per file and a level per file: no two files hash alike.
  ffmpeg -hide_banner -loglevel error -y -f lavfi \
    -i "sine=frequency=${freqs[$((i % 5))]}:sample_rate=44100:duration=$seconds" \
    -af "volume=$(awk -v i="$i" 'BEGIN { printf "%.3f", 0.2 + 0.004 * i }'),pan=stereo|c0=c0|c1=c0" \
    -c:a libmp3lame -b:a 128k "$out.tmp.mp3"
  mv "$out.tmp.mp3" "$out"
done

burners=""
if [ -n "$busy" ]; then
  for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    burners="$burners $!"
  done
  trap 'kill $burners 2>/dev/null || true' EXIT
  echo "(a CPU burner on each of $(nproc) cores)"
fi

run() {
  LOA_BUSY_MEDIA="$PWD/$media" LOA_BUSY_ZONES=$zones LOA_BUSY_EMERGENCIES=$emergencies "$@" \
    cargo test --release --offline --locked --test busy_emergency -- --ignored --nocapture 2>&1 \
    | grep -E "^(emergency|program start)|panicked|took" || true
}

echo "== idle daemon ($emergencies emergencies)"
LOA_BUSY_IDLE=1 LOA_BUSY_PROGRAMS=0 run env
echo "== $programs programs starting on $zones zones (${seconds} s MP3s, first plays), $emergencies emergencies meanwhile"
LOA_BUSY_PROGRAMS=$programs run env
