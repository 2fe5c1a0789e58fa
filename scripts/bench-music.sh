#!/usr/bin/env bash
# The music-like 44.1 kHz stereo MP3 the transcode figures use, made once
# per length and cached: pink noise bed, a melody and a bass line.
#
#   scripts/bench-music.sh SECONDS      (prints the file's path)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:?usage: bench-music.sh SECONDS}
work=${CARGO_TARGET_DIR:-target}/bench-vs-ffmpeg
mkdir -p "$work"
mp3="$work/music-${secs}s-44k1-stereo.mp3"
if [ ! -s "$mp3" ]; then
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.15:duration=$secs:sample_rate=44100" \
    -f lavfi -i "aevalsrc='0.3*sin(2*PI*(330+110*sin(2*PI*0.5*t))*t)':s=44100:d=$secs" \
    -f lavfi -i "aevalsrc='0.3*sin(2*PI*(82+20*floor(mod(t,4)))*t)':s=44100:d=$secs" \
    -filter_complex "[0][1][2]amix=inputs=3,pan=stereo|c0=c0|c1=0.8*c0" \
    -c:a libmp3lame -b:a 192k "$mp3.tmp.mp3"
  mv "$mp3.tmp.mp3" "$mp3"
fi
echo "$mp3"
