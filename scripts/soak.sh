#!/usr/bin/env bash
# Soak: the daemon as a station runs it, for DURATION, then a verdict.
#
#   scripts/netns.sh scripts/soak.sh DURATION        (e.g. 1h, 20m, 600)
#
# 8 zones, each looping background music; a schedule on all zones every
# minute (an 8 s announcement); an emergency on all zones every 5 minutes
# (`loa play --priority emergency`, 15 s); three reference speakers on zones
# 1–3 dropping 0 %, 5 % and 20 % of packets and reporting RTCP. Every RTP
# packet is captured on lo. At the end (SIGTERM) it prints:
#   - RTP sequence gaps per zone (expected 0) and pacing p99/max on the wire,
#   - pacer underruns (expected 0) from the daemon's own statistics,
#   - RSS over the run, growth per hour over its second half (≤ 1 MB/h),
#   - history rows per origin and outcome vs what the script asked for,
#   - each speaker's health state vs what its drop rate should give.
# Exit status 1 if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "soak.sh sends multicast: run it as scripts/netns.sh scripts/soak.sh DURATION" >&2
  exit 1
fi
dur=${1:-1h}
case "$dur" in
  *h) secs=$(( ${dur%h} * 3600 )) ;;
  *m) secs=$(( ${dur%m} * 60 )) ;;
  *s) secs=${dur%s} ;;
  *) secs=$dur ;;
esac
[ "$secs" -ge 120 ] || { echo "soak.sh: DURATION must be at least 2 minutes" >&2; exit 1; }

cargo build --release --offline --locked --bin loa >/dev/null 2>&1 || cargo build --release --offline --locked --bin loa
LOA=$PWD/target/release/loa
work=$PWD/target/soak
rm -rf "$work/state" "$work"/*.wav "$work"/*.log "$work"/*.pcap
mkdir -p "$work/media"
m="$work/media"
gen() { [ -s "$1" ] || ffmpeg -hide_banner -loglevel error -y "${@:2}" "$1"; }
# Background music: 10 minutes, two different files, looped.
gen "$m/music-a.mp3" -f lavfi -i "sine=frequency=330:sample_rate=44100:duration=600" \
  -f lavfi -i "anoisesrc=color=pink:amplitude=0.05:sample_rate=44100:duration=600" \
  -filter_complex amix=inputs=2 -ac 2 -c:a libmp3lame -b:a 128k
gen "$m/music-b.flac" -f lavfi -i "sine=frequency=220:sample_rate=48000:duration=600" -ac 2 -c:a flac
gen "$m/announce.flac" -f lavfi -i "sine=frequency=660:sample_rate=22050:duration=8" -c:a flac
gen "$m/emergency.wav" -f lavfi -i "sine=frequency=990:sample_rate=16000:duration=15" -c:a pcm_s16le

sock="$work/loa.sock"
{
  printf '[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
  printf '[daemon]\nsocket = "%s"\nstate_dir = "%s/state"\nmedia_roots = ["%s"]\n' "$sock" "$work" "$m"
  printf '[health]\nreport_interval = "1s"\n'
  for z in 1 2 3 4 5 6 7 8; do
    printf '[[zone]]\nname = "z%d"\ngroup = "239.255.95.%d:5004"\n' "$z" "$z"
    case $z in
      1) printf 'endpoints = [{ name = "drop-0", address = "127.0.0.2" }]\n' ;;
      2) printf 'endpoints = [{ name = "drop-5", address = "127.0.0.3" }]\n' ;;
      3) printf 'endpoints = [{ name = "drop-20", address = "127.0.0.4" }]\n' ;;
    esac
  done
  printf '[[schedule]]\nname = "moi-phut"\ncron = "* * * * *"\nfile = "announce.flac"\n'
  printf 'zones = "all"\npriority = "announcement"\nmisfire_grace = "30s"\n'
} > "$work/loa.toml"

pids=""
cleanup() { kill $pids 2>/dev/null || true; }
trap cleanup EXIT

dumpcap -q -i lo -f "udp dst port 5004" -w "$work/rtp.pcap" 2>/dev/null &
cap=$!
pids="$pids $cap"
sleep 1
RUST_LOG=info "$LOA" serve --config "$work/loa.toml" 2> "$work/loa.log" &
daemon=$!
pids="$pids $daemon"
for _ in $(seq 100); do "$LOA" status --socket "$sock" >/dev/null 2>&1 && break; sleep 0.1; done

n=0
for drop in 0 5 20; do
  n=$((n + 1))
  "$LOA" speaker --group "239.255.95.$n:5004" --interface 127.0.0.1 --bind "127.0.0.$((n + 1))" \
    --drop "$drop" --seed "$n" --rtcp-interval 1 --out - > /dev/null 2> "$work/speaker-$drop.log" &
  pids="$pids $!"
done

for z in 1 2 3 4 5 6 7 8; do
  f=$([ $((z % 2)) = 1 ] && echo music-a.mp3 || echo music-b.flac)
  "$LOA" play --socket "$sock" --zones "z$z" --priority background --loop --name "music-z$z" "$m/$f" >/dev/null
done

rss() { awk '/VmRSS/ { print $2 }' "/proc/$daemon/status"; }
# SCHED_FIFO needs root or CAP_SYS_NICE; without it the pacer runs at normal priority.
sleep 1
echo "pacer thread scheduling (class, rt priority): $(ps -L -o cls=,rtprio=,comm= -p "$daemon" | awk '$3 == "loa-pacer" { print $1, $2 }')" | tee "$work/sched.txt"
t0=$(date +%s)
end=$((t0 + secs))
emergencies=0
rss5=""
: > "$work/rss.txt"
next_emergency=$((t0 + 150))
next_sample=$t0
echo "soak: $secs s from $(date -d "@$t0" '+%F %T'); work in $work"
while [ "$(date +%s)" -lt "$end" ]; do
  now=$(date +%s)
  if [ "$now" -ge "$next_emergency" ] && [ $((now + 20)) -lt "$end" ]; then
    "$LOA" play --socket "$sock" --zones all --priority emergency --name "khan-cap" "$m/emergency.wav" >/dev/null
    emergencies=$((emergencies + 1))
    next_emergency=$((next_emergency + 300))
  fi
  if [ "$now" -ge "$next_sample" ]; then
    echo "$((now - t0)) $(rss)" >> "$work/rss.txt"
    [ -n "$rss5" ] || [ $((now - t0)) -lt 300 ] || rss5=$(rss)
    next_sample=$((next_sample + 60))
  fi
  kill -0 "$daemon" 2>/dev/null || { echo "soak: the daemon died" >&2; exit 1; }
  sleep 1
done
t1=$(date +%s)
echo "$((t1 - t0)) $(rss)" >> "$work/rss.txt"
"$LOA" endpoints --socket "$sock" --json > "$work/endpoints.json"
"$LOA" status --socket "$sock" --json > "$work/status.json"
kill -TERM "$daemon"
wait "$daemon" || true
sleep 1
kill -INT $cap 2>/dev/null || true
wait $cap 2>/dev/null || true
kill $pids 2>/dev/null || true
trap - EXIT

# History straight from the database the daemon wrote.
python3 - "$work" "$t0" "$t1" "$emergencies" "${rss5:-}" <<'PY'
import json, sqlite3, subprocess, sys, collections, re
work, t0, t1, emergencies, rss5 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ok = True
def check(cond, text):
    global ok
    print(("  ok   " if cond else "  FAIL ") + text)
    ok = ok and cond

# RTP on the wire: per zone, sequence gaps and send-time deviation.
out = subprocess.run(["tshark", "-r", f"{work}/rtp.pcap", "-d", "udp.port==5004,rtp", "-Y", "rtp",
                      "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.dst", "-e", "rtp.ssrc",
                      "-e", "rtp.seq", "-e", "rtp.timestamp"], capture_output=True, text=True).stdout
zones = collections.defaultdict(list)
for line in out.splitlines():
    f = line.split("\t")
    if len(f) == 5:
        zones[f[1]].append((float(f[0]), int(f[2], 16) if f[2].startswith("0x") else int(f[2]), int(f[3]), int(f[4])))
print(f"soak over {t1 - t0} s, {emergencies} emergencies, {sum(map(len, zones.values()))} RTP packets captured")
print("RTP per zone (capture on lo):")
total_gaps = 0
worst99 = worst_max = 0.0
for dst in sorted(zones):
    pk = zones[dst]
    gaps = 0
    ssrcs = {p[1] for p in pk}
    for a, b in zip(pk, pk[1:]):
        d = (b[2] - a[2]) & 0xFFFF
        if d != 1:
            gaps += 1
    total_gaps += gaps
    # Deviation of each packet from the sender's grid: t - ts/48000, unwrapped,
    # with the constant offset removed (median), in ms. Idle stretches between
    # programs keep the same grid, so one line fits the whole run.
    unwrapped, off, prev = [], 0, None
    for p in pk:
        if prev is not None and p[3] < prev and prev - p[3] > 1 << 31:
            off += 1 << 32
        prev = p[3]
        unwrapped.append(p[3] + off)
    n = len(pk)
    xs = [u / 48000.0 for u in unwrapped]
    ys = [p[0] for p in pk]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 1.0
    res = sorted((y - (my + b * (x - mx))) for x, y in zip(xs, ys))
    base = res[0]
    dev = [(r - base) * 1e3 for r in res]
    p99, mxd = dev[int(0.99 * (n - 1))], dev[-1]
    worst99, worst_max = max(worst99, p99), max(worst_max, mxd)
    print(f"  {dst:<15} {n:>8} packets  ssrc {len(ssrcs)}  seq gaps {gaps}  pacing p99 {p99:.3f} ms  max {mxd:.3f} ms  drift {(b - 1) * 1e6:+.1f} ppm")
check(total_gaps == 0, f"sequence gaps: {total_gaps} (expected 0)")

log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{work}/loa.log").read())
m = re.findall(r"pacer stopped packets=(\d+) underruns=(\d+) p99_ms=([0-9.]+) max_ms=([0-9.]+)", log)
if m:
    packets, underruns, p99, mx = m[-1]
    print(f"pacer: {packets} packets, wake-up lateness p99 {float(p99):.3f} ms, max {float(mx):.3f} ms")
    check(int(underruns) == 0, f"pacer underruns: {underruns} (expected 0)")
else:
    check(False, "pacer statistics missing from the log")
warnings = len(re.findall(r" (WARN|ERROR) ", log))
print(f"log: {warnings} warnings/errors")

rows = [(int(a), int(b)) for a, b in (l.split() for l in open(f"{work}/rss.txt") if l.strip())]
# The first minutes are warm-up (SQLite's page cache, allocator arenas,
# health state fill up), so growth is judged over the second half of the run.
half = min(rows, key=lambda r: abs(r[0] - (t1 - t0) / 2))
last = rows[-1]
growth = (last[1] - half[1]) / 1024 / max((last[0] - half[0]) / 3600, 1e-9)
print(f"RSS: {rows[0][1] / 1024:.1f} MB at start, {int(rss5) / 1024 if rss5 else float('nan'):.1f} MB at 5 min, "
      f"{half[1] / 1024:.1f} MB at {half[0] // 60} min, {last[1] / 1024:.1f} MB at the end, max {max(r[1] for r in rows) / 1024:.1f} MB")
if t1 - t0 >= 900:
    check(growth <= 1.0, f"RSS growth {growth:+.2f} MB/h over the second half (target ≤ 1 MB/h)")
else:
    print(f"  (RSS growth {growth:+.2f} MB/h not judged: runs under 15 minutes are mostly warm-up)")

db = sqlite3.connect(f"{work}/state/loa.db")
check(db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "SQLite integrity_check ok")
counts = collections.Counter()
for origin, name, outcome in db.execute("SELECT origin, program_name, outcome FROM history"):
    kind = "schedule" if origin.startswith("schedule:") else ("emergency" if name == "khan-cap" else "background")
    counts[(kind, outcome)] += 1
print("history rows (kind, outcome): " + ", ".join(f"{k}/{o}={n}" for (k, o), n in sorted(counts.items(), key=str)))
minutes = sum(1 for t in range(t0 + 1, t1 - 9) if t % 60 == 0)
sched_done = counts[("schedule", "completed")]
check(sched_done >= minutes, f"schedule fires completed: {sched_done} (expected ≥ {minutes}, one per minute)")
check(counts[("schedule", "missed")] == 0 and counts[("schedule", "failed")] == 0, "no missed or failed schedule rows")
check(counts[("emergency", "completed")] == emergencies, f"emergencies completed: {counts[('emergency', 'completed')]} (expected {emergencies})")
open_rows = db.execute("SELECT count(*) FROM history WHERE end_ms IS NULL").fetchone()[0]
check(open_rows == 0, f"rows left open after SIGTERM: {open_rows}")
check(sum(n for (k, o), n in counts.items() if o in ("failed", "interrupted")) == 0, "no failed or interrupted rows")

eps = json.load(open(f"{work}/endpoints.json"))
eps = eps.get("endpoints", eps) if isinstance(eps, dict) else eps
expect = {"drop-0": {"online"}, "drop-5": {"online", "degraded"}, "drop-20": {"degraded"}}
for e in eps:
    name = e.get("name")
    if name in expect:
        loss = e.get("loss_pct")
        check(e.get("state") in expect[name], f"speaker {name}: {e.get('state')}, loss {loss} % (expected {'/'.join(sorted(expect[name]))})")
trans = db.execute("SELECT count(*) FROM health_events").fetchone()[0]
print(f"health transitions stored: {trans}")
print("verdict: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
