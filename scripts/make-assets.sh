#!/usr/bin/env bash
# Regenerates the shipped demo audio in assets/. Everything is our own:
# synthesised tones, a synthesised chime, and espeak-ng speech. The files are
# committed so the demo needs no generation step; this script documents how
# they were made (and deliberately uses different formats, rates and channel
# counts so the demo exercises decode, downmix and resampling).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p assets

# Spoken announcement, 22.05 kHz mono FLAC (resampled to 48 kHz on the way).
espeak-ng -v vi -s 140 -w /tmp/loa-thong-bao.wav \
  "Xin chào bà con. Đây là đài truyền thanh xã. Sau đây là bản tin thử nghiệm của hệ thống loa."
ffmpeg -hide_banner -loglevel error -y -i /tmp/loa-thong-bao.wav -ar 22050 -ac 1 \
  -c:a flac assets/thong-bao.flac

# Five one-second tones (C major arpeggio), 44.1 kHz stereo MP3 (downmixed
# and resampled on the way).
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=523.25:duration=1:sample_rate=44100" \
  -f lavfi -i "sine=frequency=659.25:duration=1:sample_rate=44100" \
  -f lavfi -i "sine=frequency=783.99:duration=1:sample_rate=44100" \
  -f lavfi -i "sine=frequency=1046.5:duration=1:sample_rate=44100" \
  -f lavfi -i "sine=frequency=783.99:duration=1:sample_rate=44100" \
  -filter_complex "[0][1][2][3][4]concat=n=5:v=0:a=1,volume=0.5,pan=stereo|c0=c0|c1=c0" \
  -c:a libmp3lame -b:a 128k assets/tones-44k1-stereo.mp3

# Pre-announcement chime: three decaying bell-like notes, 48 kHz mono Vorbis.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i \
  "aevalsrc='0.4*(sin(2*PI*880*t)*exp(-3*t)*lt(t,0.7)+sin(2*PI*698.46*(t-0.6))*exp(-3*(t-0.6))*gte(t,0.6)*lt(t,1.3)+sin(2*PI*523.25*(t-1.2))*exp(-2.5*(t-1.2))*gte(t,1.2))':s=48000:d=2.6" \
  -c:a libvorbis -q:a 4 assets/chime.ogg
ls -l assets
