#!/usr/bin/env bash
# Figures of the daemon (issue 4), measured on the release build through its
# real surfaces (RTP arrival on loopback multicast, the CLI over the socket):
#   1. scheduled-start offset: first packet of each fire vs the cron instant,
#      over FIRES fires of a schedule firing every 2 s;
#   2. preemption latency: `loa play --priority emergency` to the first packet
#      of the emergency on the zone, over RUNS runs;
#   3. idle CPU and peak RSS of the daemon with 8 zones configured and 2
#      programs playing, over SECONDS of real time.
#
#   scripts/netns.sh scripts/daemon-figures.sh [--busy] [FIRES] [RUNS] [SECONDS]
#
# --busy runs a CPU-burning process per core at normal priority during 1 and
# 2 (issue 6: the same figures under load). Exits non-zero if a test run
# fails or prints no figure, or the daemon does not stop cleanly.
set -euo pipefail
busy=""
if [ "${1:-}" = --busy ]; then busy=1; shift; fi
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "daemon-figures.sh sends multicast: run it as scripts/netns.sh scripts/daemon-figures.sh" >&2
  exit 1
fi
fires=${1:-12}
runs=${2:-5}
secs=${3:-30}

cargo test --release --offline --locked --test daemon --no-run >/dev/null 2>&1
cargo build --release --offline --locked --bin loa >/dev/null 2>&1

work_runs=$(mktemp)
burners=""
trap 'rm -f "$work_runs" "$work_runs.log"' EXIT
if [ -n "$busy" ]; then
  for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    burners="$burners $!"
  done
  trap 'kill $burners 2>/dev/null || true; rm -f "$work_runs" "$work_runs.log"' EXIT
  echo "(a CPU burner on each of $(nproc) cores during the offset and preemption runs)"
fi

echo "== scheduled start offset ($fires fires)"
if ! LOA_FIRES=$fires cargo test --release --offline --locked --test daemon -- --nocapture \
    schedule_fires_at_the_cron_instant > "$work_runs.log" 2>&1; then
  echo "daemon-figures: the schedule offset test failed:" >&2
  tail -20 "$work_runs.log" >&2
  exit 1
fi
grep "schedule start offset over" "$work_runs.log" \
  || { echo "daemon-figures: the schedule offset test printed no figure" >&2; exit 1; }

echo "== preemption latency ($runs runs)"
: > "$work_runs"
for r in $(seq "$runs"); do
  # A run that fails or prints no figure fails the script: a p50/max over
  # fewer runs than asked (or none) is not the figure.
  if ! cargo test --release --offline --locked --test daemon -- --nocapture \
      emergency_preempts_one_zone > "$work_runs.log" 2>&1; then
    echo "daemon-figures: preemption run $r failed:" >&2
    tail -20 "$work_runs.log" >&2
    exit 1
  fi
  grep -o 'preemption latency.*: [0-9.]* ms' "$work_runs.log" | grep -o '[0-9.]* ms$' | grep -o '^[0-9.]*' >> "$work_runs" \
    || { echo "daemon-figures: preemption run $r printed no latency" >&2; exit 1; }
done
sort -n "$work_runs" | awk -v want="$runs" '{ v[NR] = $1 }
  END {
    if (NR != want) { printf "daemon-figures: %d preemption figures from %d runs\n", NR, want > "/dev/stderr"; exit 1 }
    printf "preemption latency: p50 %.1f ms, max %.1f ms over %d runs\n", v[int((NR + 1) / 2)], v[NR], NR
  }'

if [ -n "$burners" ]; then
  exit 0
fi

echo "== daemon CPU and memory: 8 zones, 2 programs playing, ${secs} s"
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work" "$work_runs" "$work_runs.log"' EXIT
mkdir -p "$work/media"
cp assets/thong-bao.flac assets/tones-44k1-stereo.mp3 "$work/media/"
{
  printf '[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
  printf '[daemon]\nsocket = "%s/loa.sock"\nstate_dir = "%s/state"\nmedia_roots = ["%s/media"]\n' "$work" "$work" "$work"
  for z in 1 2 3 4 5 6 7 8; do
    printf '[[zone]]\nname = "zone-%d"\ngroup = "239.255.93.%d:5004"\n' "$z" "$z"
  done
} > "$work/loa.toml"
LOA=target/release/loa
$LOA serve --config "$work/loa.toml" 2> "$work/loa.log" &
pid=$!
for _ in $(seq 100); do $LOA status --socket "$work/loa.sock" >/dev/null 2>&1 && break; sleep 0.1; done
$LOA play --socket "$work/loa.sock" --zones zone-1,zone-2,zone-3,zone-4 --loop "$work/media/thong-bao.flac" >/dev/null
$LOA play --socket "$work/loa.sock" --zones zone-5,zone-6,zone-7,zone-8 --loop "$work/media/tones-44k1-stereo.mp3" >/dev/null
sleep 2
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep "$secs"
t1=$(ticks)
rss=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" -v rss="$rss" \
  'BEGIN { printf "daemon: %.2f %% of one core, peak RSS %.1f MB (8 zones, 2 programs)\n", 100 * d / hz / s, rss / 1024 }'
$LOA stop --socket "$work/loa.sock" --all >/dev/null
sleep 1
t0=$(ticks)
sleep "$secs"
t1=$(ticks)
awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" \
  'BEGIN { printf "daemon idle (8 zones, nothing playing): %.2f %% of one core\n", 100 * d / hz / s }'
kill -TERM "$pid"
wait "$pid" || { echo "daemon-figures: the daemon exited with status $? after SIGTERM: $(tail -3 "$work/loa.log")" >&2; exit 1; }
