#!/usr/bin/env bash
# Why the transcode targets are where they are (README "Transcode"):
#   1. where loa's transcode spends its CPU: `perf record` of the bench
#      binary's `transcode full FILE 1 32000` (mono 32 kbit/s), self time
#      grouped by what owns each symbol: libopus (C, linked statically, so
#      its symbols carry no Rust path), symphonia (MP3 decode), rubato and
#      its FFTs (resampling), loa's own code, the Rust standard library
#      (copies, allocation), libc/libm and the kernel;
#   2. the two libopus versions alone, encoding the same 48 kHz mono PCM at
#      32 kbit/s, complexity 10, constrained VBR: ffmpeg (the system
#      libopus) and loa's bench binary (`transcode encode`, loa's bundled
#      libopus); whole-process CPU for both (each reads the WAV itself),
#      RUNS runs interleaved, median (min–max).
#
#   scripts/transcode-breakdown.sh [SECONDS] [RUNS]      (defaults 120 s, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
runs=${2:-5}
tgt=${CARGO_TARGET_DIR:-target}
work=$tgt/transcode-breakdown
mkdir -p "$work"
mp3=$(scripts/bench-music.sh "$secs")
pcm="$work/pcm-${secs}s-48k-1ch.wav"
[ -s "$pcm" ] || ffmpeg -hide_banner -loglevel error -y -i "$mp3" -ar 48000 -ac 1 -c:a pcm_s16le "$pcm"
cargo build --release --locked --bench transcode >/dev/null 2>&1 || cargo build --release --locked --bench transcode
bench=$(ls -t "$tgt"/release/deps/transcode-* | grep -v '\.d$' | head -1)

echo "== where loa's transcode spends its CPU ($secs s MP3 → Opus mono 32 kbit/s, perf record, self time)"
perf record -q -F 2999 -o "$work/perf.data" -- "$bench" full "$mp3" 1 32000 > /dev/null 2> "$work/perf.log" \
  || { echo "transcode-breakdown: perf record failed: $(tail -3 "$work/perf.log")" >&2; exit 1; }
perf report -i "$work/perf.data" --no-children --sort dso,sym --stdio --percent-limit 0 2> /dev/null \
  | python3 -c '
import re, sys, collections
bins = sys.argv[1]
share = collections.Counter()
for line in sys.stdin:
    m = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
    if not m:
        continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    if dso == "[kernel.kallsyms]" or dso.startswith("[k"):
        group = "kernel"
    elif not bins.startswith(dso) and dso not in bins:
        group = "libc / libm / loader (" + dso + ")" if dso.startswith(("libc", "libm", "ld-")) else dso
    elif "symphonia" in sym:
        group = "symphonia (MP3 decode)"
    elif re.search(r"rubato|realfft|rustfft", sym):
        group = "rubato + FFT (resampling)"
    elif "loa::" in sym:
        group = "loa (mix, framing, RTP)"
    elif "::" in sym:
        group = "Rust std (copies, allocation)"
    else:
        group = "libopus (encode)"
    share[group] += pct
if not share:
    sys.exit("transcode-breakdown: perf report gave no samples")
for group, pct in share.most_common():
    print(f"  {pct:5.1f} %  {group}")
' "$(basename "$bench")"

echo "== libopus alone: the same $secs s of 48 kHz mono PCM → Opus 32 kbit/s, c10, constrained VBR, whole process, $runs runs interleaved"
ff_lib=$(ldd "$(command -v ffmpeg)" | awk '$1 ~ /^libopus\.so/ { print $3 }' | head -1)
[ -n "$ff_lib" ] || { echo "transcode-breakdown: ldd names no libopus for ffmpeg" >&2; exit 1; }
ff_opus=$(python3 -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.opus_get_version_string.restype = ctypes.c_char_p
print(lib.opus_get_version_string().decode())' "$ff_lib")
loa_opus=$("$bench" version)
cpu_of() {
  local TIMEFORMAT='%U %S' t
  t=$( { time "$@" >/dev/null 2>"$work/stderr"; } 2>&1 ) \
    || { echo "transcode-breakdown: failed: $* ($(tail -3 "$work/stderr"))" >&2; exit 1; }
  awk '{ print $1 + $2 }' <<<"$t"
}
: > "$work/runs.txt"
for r in $(seq "$runs"); do
  ff=$(cpu_of ffmpeg -hide_banner -loglevel error -threads 1 -i "$pcm" -c:a libopus -application audio \
    -b:a 32000 -compression_level 10 -frame_duration 20 -vbr constrained -fec 0 -f null -)
  loa=$(cpu_of "$bench" encode "$pcm" 1 32000)
  echo "$ff $loa" >> "$work/runs.txt"
done
python3 - "$work/runs.txt" "$ff_opus" "$loa_opus" <<'PY'
import statistics, sys
runs = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
for i, who in ((0, f"{sys.argv[2]} (ffmpeg)"), (1, f"{sys.argv[3]} (loa's bench binary)")):
    v = [r[i] for r in runs]
    print(f"  {who:<36} {statistics.median(v):.3f} CPU s ({min(v):.3f}–{max(v):.3f})")
PY
