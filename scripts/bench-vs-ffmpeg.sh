#!/usr/bin/env bash
# Transcode throughput of loa against `ffmpeg -threads 1` and against libopus
# encoding alone, on the same 300 s 44.1 kHz stereo MP3, in one run.
#
#   scripts/bench-vs-ffmpeg.sh [SECONDS]
#
# Prints a table of real-time factors (audio seconds per CPU second) and the
# ratios. Targets (issue 3): loa ≥ 1.5× ffmpeg; loa ≥ 0.85× libopus alone.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
tgt=${CARGO_TARGET_DIR:-target}
work=$tgt/bench-vs-ffmpeg
mkdir -p "$work"
mp3="$work/music-${secs}s-44k1-stereo.mp3"

if [ ! -s "$mp3" ]; then
  # Music-like content: pink noise bed, a melody and a bass line, stereo.
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.15:duration=$secs:sample_rate=44100" \
    -f lavfi -i "aevalsrc='0.3*sin(2*PI*(330+110*sin(2*PI*0.5*t))*t)':s=44100:d=$secs" \
    -f lavfi -i "aevalsrc='0.3*sin(2*PI*(82+20*floor(mod(t,4)))*t)':s=44100:d=$secs" \
    -filter_complex "[0][1][2]amix=inputs=3,pan=stereo|c0=c0|c1=0.8*c0" \
    -c:a libmp3lame -b:a 192k "$mp3"
fi

cargo build --release --locked --bench transcode >/dev/null 2>&1 || cargo build --release --locked --bench transcode
bench=$(ls -t "$tgt"/release/deps/transcode-* | grep -v '\.d$' | head -1)

# CPU seconds (user+sys) of a command, from bash's `time`.
cpu_of() {
  local TIMEFORMAT='%U %S'
  { time "$@" >/dev/null 2>"$work/stderr"; } 2>&1 | awk '{print $1+$2}'
}

run_case() {
  local label=$1 ch=$2 br=$3
  local pcm="$work/pcm-48k-${ch}ch.wav"
  [ -s "$pcm" ] || ffmpeg -hide_banner -loglevel error -y -i "$mp3" -ar 48000 -ac "$ch" -c:a pcm_s16le "$pcm"

  local loa_line enc_line ff_cpu
  loa_line=$("$bench" full "$mp3" "$ch" "$br")
  enc_line=$("$bench" encode "$pcm" "$ch" "$br")
  ff_cpu=$(cpu_of ffmpeg -hide_banner -loglevel error -threads 1 -i "$mp3" \
      -ac "$ch" -ar 48000 -c:a libopus -application audio -b:a "$br" -compression_level 10 \
      -frame_duration 20 -vbr on -f null -)

  local loa_cpu enc_cpu
  loa_cpu=$(sed -E 's/.*cpu_s=([0-9.]+).*/\1/' <<<"$loa_line")
  enc_cpu=$(sed -E 's/.*cpu_s=([0-9.]+).*/\1/' <<<"$enc_line")
  awk -v label="$label" -v s="$secs" -v l="$loa_cpu" -v e="$enc_cpu" -v f="$ff_cpu" 'BEGIN {
    printf "%-28s %9.1fx %9.1fx %9.1fx %12.2f %14.2f\n", label, s/l, s/f, s/e, f/l, e/l
  }'
}

echo "transcode of $secs s 44.1 kHz stereo MP3 → 48 kHz Opus c10, 20 ms (real-time factor = audio s / CPU s)"
printf "%-28s %10s %10s %10s %12s %14s\n" case loa "ffmpeg-1t" "libopus" "loa/ffmpeg" "loa/libopus"
run_case "mono 32 kbit/s" 1 32000
run_case "stereo 96 kbit/s" 2 96000
echo "targets: loa/ffmpeg ≥ 1.5, loa/libopus ≥ 0.85 (libopus = encode alone on PCM in memory)"
