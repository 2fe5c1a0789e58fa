#!/usr/bin/env bash
# Transcode throughput of loa against `ffmpeg -threads 1` and against libopus
# encoding alone, on the same 44.1 kHz stereo MP3 of SECONDS, in one run.
#
#   scripts/bench-vs-ffmpeg.sh [SECONDS] [RUNS]        (defaults 300 s, 5 runs)
#
# Like for like:
#   - loa against ffmpeg: whole-process CPU time (user+sys of the process,
#     start-up, probing and encoder setup included) of loa's transcode bench
#     binary and of ffmpeg, both measured by bash's `time` around the process;
#   - loa against libopus alone: in-process CPU time of the loop for both
#     (the bench binary's own getrusage around decode → Opus → RTP, and
#     around encoding PCM already in memory);
#   - the same encoder settings on both sides: 48 kHz, complexity 10, 20 ms
#     frames, application audio, constrained VBR, no FEC;
#   - the libopus each side links is named (they differ: the ratio against
#     ffmpeg partly compares libopus versions);
#   - RUNS runs of each side, interleaved (the order alternates every run),
#     so a busy moment hits both; the table shows the median and the spread
#     (min–max) of each real-time factor and of the per-run ratios, and the
#     `figures` lines carry the medians the verdicts use.
#
# Real-time factor = audio seconds / CPU seconds. Targets (issue 3):
# loa/ffmpeg ≥ 1.5, loa/libopus ≥ 0.85 (judged by scripts/bench-table.py).
# Exits non-zero if any run fails or a libopus version cannot be named.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
runs=${2:-5}
tgt=${CARGO_TARGET_DIR:-target}
work=$tgt/bench-vs-ffmpeg
mkdir -p "$work"
mp3=$(scripts/bench-music.sh "$secs")

cargo build --release --locked --bench transcode >/dev/null 2>&1 || cargo build --release --locked --bench transcode
bench=$(ls -t "$tgt"/release/deps/transcode-* | grep -v '\.d$' | head -1)

# The libopus of each side, by its own opus_get_version_string(): loa's from
# the bench binary (same crate, same static libopus as the daemon), ffmpeg's
# from the shared library its dynamic linker resolves.
loa_opus=$("$bench" version)
ff_lib=$(ldd "$(command -v ffmpeg)" | awk '$1 ~ /^libopus\.so/ { print $3 }' | head -1)
if [ -z "$ff_lib" ] || [ ! -e "$ff_lib" ]; then
  echo "bench-vs-ffmpeg: cannot find the libopus ffmpeg links (ldd $(command -v ffmpeg) names none)" >&2
  exit 1
fi
ff_opus=$(python3 -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.opus_get_version_string.restype = ctypes.c_char_p
print(lib.opus_get_version_string().decode())' "$ff_lib")
ff_version=$(ffmpeg -hide_banner -version | awk 'NR == 1 { print $3 }')

# CPU seconds (user+sys) of a whole process, from bash's `time`; its stdout
# goes to $2's file (the bench binary's line), stderr to $work/stderr. A
# failed run stops the script: a figure from a failed run is no figure.
cpu_of() {
  local out=$1; shift
  local TIMEFORMAT='%U %S' t
  if ! t=$( { time "$@" >"$out" 2>"$work/stderr"; } 2>&1 ); then
    echo "bench-vs-ffmpeg: failed: $* ($(tail -3 "$work/stderr"))" >&2
    exit 1
  fi
  awk '{ print $1 + $2 }' <<<"$t"
}

ffmpeg_run() {
  local ch=$1 br=$2
  cpu_of /dev/null ffmpeg -hide_banner -loglevel error -threads 1 -i "$mp3" \
    -ac "$ch" -ar 48000 -c:a libopus -application audio -b:a "$br" -compression_level 10 \
    -frame_duration 20 -vbr constrained -fec 0 -f null -
}

field() { sed -nE "s/.*$1=([0-9.]+).*/\\1/p" "$2"; }

# One case: RUNS × (loa, ffmpeg, libopus alone), interleaved. Writes one line
# per run to $work/runs-LABEL.txt: the CPU seconds of loa (process), ffmpeg
# (process), loa (loop), libopus alone (loop), then the audio seconds loa and
# libopus alone say they encoded.
run_case() {
  local label=$1 ch=$2 br=$3
  local pcm="$work/pcm-${secs}s-48k-${ch}ch.wav"
  [ -s "$pcm" ] || ffmpeg -hide_banner -loglevel error -y -i "$mp3" -ar 48000 -ac "$ch" -c:a pcm_s16le "$pcm"
  local log="$work/runs-$label.txt" r loa_p ff loa_in enc loa_audio enc_audio
  : > "$log"
  for r in $(seq "$runs"); do
    if [ $((r % 2)) = 1 ]; then
      loa_p=$(cpu_of "$work/loa.out" "$bench" full "$mp3" "$ch" "$br")
      ff=$(ffmpeg_run "$ch" "$br")
    else
      ff=$(ffmpeg_run "$ch" "$br")
      loa_p=$(cpu_of "$work/loa.out" "$bench" full "$mp3" "$ch" "$br")
    fi
    loa_in=$(field cpu_s "$work/loa.out")
    cpu_of "$work/enc.out" "$bench" encode "$pcm" "$ch" "$br" >/dev/null
    enc=$(field cpu_s "$work/enc.out")
    loa_audio=$(field audio_s "$work/loa.out")
    enc_audio=$(field audio_s "$work/enc.out")
    echo "$loa_p $ff $loa_in $enc $loa_audio $enc_audio" >> "$log"
  done
}

echo "transcode of $secs s 44.1 kHz stereo MP3 → 48 kHz Opus, complexity 10, 20 ms frames, constrained VBR, no FEC (both sides)"
echo "libopus: loa links $loa_opus; ffmpeg $ff_version links $ff_opus ($ff_lib)"
echo "$runs runs of each side, interleaved; real-time factor = audio s / CPU s, median (min–max)"
run_case mono 1 32000
run_case stereo 2 96000
python3 - "$work" "$secs" <<'PY'
import statistics, sys
work, secs = sys.argv[1], float(sys.argv[2])

def spread(values, fmt):
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

print(f"{'case':<17} {'loa (process)':>22} {'ffmpeg -threads 1':>22} {'loa/ffmpeg':>19}"
      f" {'loa (loop)':>22} {'libopus alone':>22} {'loa/libopus':>19}")
figures = []
for label, name in (("mono", "mono 32 kbit/s"), ("stereo", "stereo 96 kbit/s")):
    runs = [tuple(map(float, l.split())) for l in open(f"{work}/runs-{label}.txt") if l.strip()]
    # ffmpeg transcodes the whole SECONDS file; loa and libopus alone say
    # how much audio they encoded, which must be the same file (to a frame).
    for r in runs:
        if abs(r[4] - secs) > 0.05 or abs(r[5] - secs) > 0.05:
            sys.exit(f"bench-vs-ffmpeg: {label}: loa encoded {r[4]} s and libopus alone {r[5]} s of a {secs:g} s file")
    loa_p = [r[4] / r[0] for r in runs]
    ff = [secs / r[1] for r in runs]
    loa_in = [r[4] / r[2] for r in runs]
    enc = [r[5] / r[3] for r in runs]
    # Ratios per run (each pair ran back to back), then their median.
    r_ff = [a / b for a, b in zip(loa_p, ff)]
    r_enc = [a / b for a, b in zip(loa_in, enc)]
    print(f"{name:<17} {spread(loa_p, '.1f'):>22} {spread(ff, '.1f'):>22} {spread(r_ff, '.2f'):>19}"
          f" {spread(loa_in, '.1f'):>22} {spread(enc, '.1f'):>22} {spread(r_enc, '.2f'):>19}")
    med = statistics.median
    figures.append(
        f"figures {label}: runs={len(runs)} loa_rtf={med(loa_p):.1f} ffmpeg_rtf={med(ff):.1f}"
        f" loa_ffmpeg={med(r_ff):.4f} loa_ffmpeg_min={min(r_ff):.4f} loa_ffmpeg_max={max(r_ff):.4f}"
        f" loa_loop_rtf={med(loa_in):.1f} libopus_rtf={med(enc):.1f}"
        f" loa_libopus={med(r_enc):.4f} loa_libopus_min={min(r_enc):.4f} loa_libopus_max={max(r_enc):.4f}")
print("targets: loa/ffmpeg ≥ 1.5, loa/libopus ≥ 0.85, from the medians")
print("\n".join(figures))
PY
