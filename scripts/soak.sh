#!/usr/bin/env bash
# Soak: the daemon as a station runs it, for DURATION, then a verdict.
#
#   scripts/netns.sh scripts/soak.sh DURATION [--inject-stall]   (e.g. 1h, 20m, 600; at least 60 s)
#
# 8 zones, each looping background music; a schedule on all zones every
# minute (an 8 s announcement); an emergency on all zones every 5 minutes
# (`loa play --priority emergency`, 15 s); three reference speakers on zones
# 1–3 dropping 0 %, 5 % and 20 % of packets and reporting RTCP. Every RTP
# packet is captured on lo. At the end (SIGTERM) it checks, each a FAIL if
# missed or not measured:
#   - the capture: dumpcap and tshark succeed; per zone, the packet count is
#     50 × the seconds from its `loa play` to SIGTERM, within 0.5 % (a
#     stall skips ticks but keeps sequence numbers contiguous, so only the
#     count shows the silence); RTP sequence gaps 0;
#   - pacing on the wire per zone (examples/rtp_timing.rs, first 5 s left
#     out): p99 ≤ 1 ms, max ≤ 5 ms (the busy-machine targets, as a soak
#     shares the machine), |drift| ≤ 20 ppm;
#   - the pacer's own statistics (its `pacer stopped` line): underruns 0,
#     skipped_ticks 0 (ticks lost to stalls) and longest_stall present;
#   - the log: no WARN or ERROR beyond the health changes the lossy
#     speakers are there to cause;
#   - RSS growth per hour over the second half (≤ 1 MB/h; runs of 15 min+);
#   - history rows per origin and outcome vs what the script asked for;
#   - every configured speaker listed by `loa endpoints`, in the health state
#     its drop rate should give.
# --inject-stall stops the daemon (SIGSTOP) for 1.5 s halfway through: that
# run must FAIL (`make soak-check` runs both a clean and a stalled minute).
# Exit status 1 if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "soak.sh sends multicast: run it as scripts/netns.sh scripts/soak.sh DURATION" >&2
  exit 1
fi
dur=${1:-1h}
stall=""
case "${2:-}" in
  "") ;;
  --inject-stall) stall=1 ;;
  *) echo "soak.sh: unknown option ${2} (takes DURATION [--inject-stall])" >&2; exit 1 ;;
esac
case "$dur" in
  *h) secs=$(( ${dur%h} * 3600 )) ;;
  *m) secs=$(( ${dur%m} * 60 )) ;;
  *s) secs=${dur%s} ;;
  *) secs=$dur ;;
esac
[ "$secs" -ge 60 ] || { echo "soak.sh: DURATION must be at least 60 s" >&2; exit 1; }

cargo build --release --offline --locked --bin loa --example rtp_timing >/dev/null 2>&1 \
  || cargo build --release --offline --locked --bin loa --example rtp_timing
LOA=$PWD/target/release/loa
work=$PWD/target/soak
rm -rf "$work/state" "$work"/*.sdp "$work"/*.wav "$work"/*.log "$work"/*.pcap "$work"/*.txt "$work"/*.json
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
  # Zones are SRTP (the default): each speaker holds its zone's SDP, key
  # included, and verifies every packet.
  "$LOA" sdp --config "$work/loa.toml" --zone "z$n" --out "$work/z$n.sdp" 2>/dev/null
  "$LOA" speaker --sdp "$work/z$n.sdp" --bind "127.0.0.$((n + 1))" \
    --drop "$drop" --seed "$n" --rtcp-interval 1 --out - > /dev/null 2> "$work/speaker-$drop.log" &
  pids="$pids $!"
done

# When each zone started: its packet count is judged from here to SIGTERM.
: > "$work/plays.txt"
for z in 1 2 3 4 5 6 7 8; do
  f=$([ $((z % 2)) = 1 ] && echo music-a.mp3 || echo music-b.flac)
  "$LOA" play --socket "$sock" --zones "z$z" --priority background --loop --name "music-z$z" "$m/$f" >/dev/null
  echo "239.255.95.$z $(date +%s.%N)" >> "$work/plays.txt"
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
stall_at=$([ -n "$stall" ] && echo $((t0 + secs / 2)) || echo "")
echo "soak: $secs s from $(date -d "@$t0" '+%F %T'); work in $work${stall:+; the daemon will be stopped for 1.5 s at $(date -d "@$stall_at" +%T)}"
while [ "$(date +%s)" -lt "$end" ]; do
  now=$(date +%s)
  if [ -n "$stall_at" ] && [ "$now" -ge "$stall_at" ]; then
    # The whole process stops, as under a debugger, a suspend or a frozen VM.
    kill -STOP "$daemon"
    sleep 1.5
    kill -CONT "$daemon"
    echo "soak: injected stall: daemon stopped (SIGSTOP) for 1.5 s at $(date -d "@$now" +%T)"
    stall_at=""
  fi
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
"$LOA" endpoints --socket "$sock" --json > "$work/endpoints.json" || echo "soak: loa endpoints failed" >&2
"$LOA" status --socket "$sock" --json > "$work/status.json" || echo "soak: loa status failed" >&2
t_term=$(date +%s.%N)
kill -TERM "$daemon"
daemon_status=0
wait "$daemon" || daemon_status=$?
sleep 1
kill -INT $cap 2>/dev/null || true
cap_status=0
wait $cap || cap_status=$?
kill $pids 2>/dev/null || true
trap - EXIT

# History straight from the database the daemon wrote.
python3 - "$work" "$t0" "$t1" "$emergencies" "${rss5:-}" "$t_term" "$daemon_status" "$cap_status" <<'PY'
import json, sqlite3, subprocess, sys, collections, re
work, t0, t1, emergencies, rss5 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
t_term, daemon_status, cap_status = float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
ok = True
def check(cond, text):
    global ok
    print(("  ok   " if cond else "  FAIL ") + text)
    ok = ok and cond
def not_measured(text):
    check(False, f"not measured ({text})")

check(daemon_status == 0, f"daemon exit status after SIGTERM: {daemon_status}")
check(cap_status == 0, f"capture (dumpcap) exit status: {cap_status}")

# RTP on the wire, per zone: packet count against 50 per second since the
# zone's `loa play`, sequence gaps, and the send-time deviation from the
# zone's own 20 ms grid (examples/rtp_timing.rs, as scripts/pacing.sh).
tshark = subprocess.run(["tshark", "-r", f"{work}/rtp.pcap", "-d", "udp.port==5004,rtp", "-Y", "rtp",
                         "-T", "fields", "-e", "frame.time_epoch", "-e", "ip.dst", "-e", "rtp.ssrc",
                         "-e", "rtp.seq", "-e", "rtp.timestamp"], capture_output=True, text=True)
check(tshark.returncode == 0, f"tshark read the capture (exit status {tshark.returncode}"
      + (f": {tshark.stderr.strip().splitlines()[-1]})" if tshark.returncode and tshark.stderr.strip() else ")"))
zones = collections.defaultdict(list)
unparsed = 0
for line in tshark.stdout.splitlines():
    f = line.split("\t")
    try:
        zones[f[1]].append((float(f[0]), int(f[2], 16) if f[2].startswith("0x") else int(f[2]), int(f[3]), int(f[4])))
    except (IndexError, ValueError):
        unparsed += 1
check(unparsed == 0, f"every captured RTP line parsed ({unparsed} did not)")
plays = {dst: float(t) for dst, t in (l.split() for l in open(f"{work}/plays.txt") if l.strip())}
print(f"soak over {t1 - t0} s, {emergencies} emergencies, {sum(map(len, zones.values()))} RTP packets captured")
timing = subprocess.run([f"{work}/../release/examples/rtp_timing", "--skip", "5"], capture_output=True, text=True,
                        input="".join(f"{p[0]}\t{dst}\t{p[3]}\n" for dst in sorted(zones) for p in zones[dst]))
pacing = {}
for line in timing.stdout.splitlines()[1:]:
    f = line.split()
    if len(f) == 6:
        pacing[f[0]] = tuple(float(v) for v in f[3:6])
if timing.returncode != 0 or timing.stderr.strip():
    print(f"  rtp_timing (exit status {timing.returncode}): {timing.stderr.strip()}")
print("RTP per zone (capture on lo; pacing without each zone's first 5 s):")
total_gaps = total = total_expected = 0
for dst in sorted(plays):
    pk = zones.get(dst, [])
    # Sequence numbers stay contiguous across a stall (skipped ticks are
    # never stamped), so the count is what shows the silence.
    expected = round(50 * (t_term - plays[dst]))
    total, total_expected = total + len(pk), total_expected + expected
    check(abs(len(pk) - expected) <= 0.005 * expected,
          f"{dst}: {len(pk)} packets, expected {expected} (50/s for {t_term - plays[dst]:.1f} s) within 0.5 %")
    gaps = sum(1 for a, b in zip(pk, pk[1:]) if (b[2] - a[2]) & 0xFFFF != 1)
    total_gaps += gaps
    if dst not in pacing:
        not_measured(f"{dst}: no pacing figures from rtp_timing")
        continue
    p99, mx, drift = pacing[dst]
    check(p99 <= 1.0 and mx <= 5.0 and abs(drift) <= 20.0,
          f"{dst}: ssrc {len({p[1] for p in pk})}, seq gaps {gaps}, pacing p99 {p99:.3f} ms (≤ 1), "
          f"max {mx:.3f} ms (≤ 5), drift {drift:+.1f} ppm (|drift| ≤ 20)")
print(f"  all zones: {total} packets captured, {total_expected} expected")
check(total_gaps == 0, f"sequence gaps: {total_gaps} (expected 0)")

log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{work}/loa.log").read())
stopped = [l for l in log.splitlines() if "pacer stopped" in l]
if stopped:
    # Every key=value of the daemon's last statistics line; a figure the
    # line does not carry is not measured, and fails the soak.
    stats = dict(re.findall(r"(\w+)=(\S+)", stopped[-1]))
    def stat(key):
        v = stats.get(key)
        try:
            return float(v) if v is not None else None
        except ValueError:
            return None
    print("pacer: " + " ".join(f"{k}={v}" for k, v in stats.items()))
    for key, want in (("underruns", 0), ("skipped_ticks", 0)):
        v = stat(key)
        if v is None:
            not_measured(f"the pacer's statistics line has no number for {key}")
        else:
            check(v == want, f"pacer {key}: {v:.0f} (expected {want})")
    longest = next((k for k in ("longest_stall_ms", "longest_stall") if k in stats), None)
    if longest is None:
        not_measured("the pacer's statistics line has no longest_stall")
    else:
        print(f"  pacer longest stall: {stats[longest]}")
else:
    not_measured("no 'pacer stopped' statistics line in the log")
# Warnings a clean soak has: the lossy speakers crossing the health
# threshold (what they are there for). Anything else fails the run, a
# stall's "pacer stalled" warning included.
expected_warning = re.compile(r"speaker drop-(5|20) .*→ (degraded|online)")
problems = [l for l in log.splitlines() if re.search(r" (WARN|ERROR) ", l) and not expected_warning.search(l)]
print(f"log: {len(re.findall(r' (WARN|ERROR) ', log))} warnings/errors, {len(problems)} not expected")
for l in problems[:10]:
    print(f"    {l}")
check(not problems, f"no unexpected warning or error in the log ({len(problems)})")

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

expect = {"drop-0": {"online"}, "drop-5": {"online", "degraded"}, "drop-20": {"degraded"}}
try:
    eps = json.load(open(f"{work}/endpoints.json"))
    eps = eps.get("endpoints", eps) if isinstance(eps, dict) else eps
except (OSError, ValueError) as e:
    not_measured(f"loa endpoints gave no list: {e}")
    eps = []
listed = {e.get("name"): e for e in eps}
for name in sorted(expect):
    e = listed.get(name)
    if e is None:
        check(False, f"speaker {name}: missing from loa endpoints")
        continue
    check(e.get("state") in expect[name],
          f"speaker {name}: {e.get('state')}, loss {e.get('loss_pct')} % (expected {'/'.join(sorted(expect[name]))})")
trans = db.execute("SELECT count(*) FROM health_events").fetchone()[0]
print(f"health transitions stored: {trans}")
print("verdict: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
