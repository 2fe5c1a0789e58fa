//! The verdicts of `make bench` (scripts/bench-table.py, which builds the
//! table from each part's output and exit status) on made-up part outputs:
//! no benchmark runs here. A figure that is missing, unparsable ('?'), from
//! an empty file or from a part that failed must read "not measured" with
//! its reason, never "met", and make the table exit non-zero; every target a
//! row names is judged.
//!
//! The outputs below are what the parts print (taken from real runs, with
//! figures set so every target is met unless a test says otherwise).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const TRANSCODE: &str = "\
transcode of 300 s 44.1 kHz stereo MP3 → 48 kHz Opus, complexity 10, 20 ms frames, constrained VBR, no FEC (both sides)
libopus: loa links libopus 1.6.1; ffmpeg 5.1.9-0+deb12u1 links libopus 1.3.1 (/lib/x86_64-linux-gnu/libopus.so.0)
5 runs of each side, interleaved; real-time factor = audio s / CPU s, median (min–max)
case                       loa (process)      ffmpeg -threads 1          loa/ffmpeg             loa (loop)          libopus alone         loa/libopus
mono 32 kbit/s          92.6 (86.2–94.3)       42.7 (39.4–44.8)    2.17 (1.92–2.27)       95.2 (87.7–97.1)    103.6 (99.9–104.9)    0.92 (0.86–0.95)
stereo 96 kbit/s     133.3 (129.9–135.1)       64.9 (60.6–65.4)    2.07 (1.99–2.20)    137.0 (135.1–138.9)    151.8 (142.4–151.8)    0.90 (0.88–0.93)
targets: loa/ffmpeg ≥ 1.5, loa/libopus ≥ 0.85, from the medians
figures mono: runs=5 loa_rtf=92.6 ffmpeg_rtf=42.7 loa_ffmpeg=2.167 loa_ffmpeg_min=1.922 loa_ffmpeg_max=2.269 loa_loop_rtf=95.2 libopus_rtf=103.6 loa_libopus=0.920 loa_libopus_min=0.860 loa_libopus_max=0.950
figures stereo: runs=5 loa_rtf=133.3 ffmpeg_rtf=64.9 loa_ffmpeg=2.068 loa_ffmpeg_min=1.987 loa_ffmpeg_max=2.200 loa_loop_rtf=137.0 libopus_rtf=151.8 loa_libopus=0.900 loa_libopus_min=0.880 loa_libopus_max=0.930
";

const CAPACITY: &str = "\
programs: 64 requested, 64 still playing after 60 s
daemon CPU: 47 % of one core (2 cores available), peak RSS 42.1 MB
pacer: 2026-12-04T22:34:42.888755Z  INFO loa::daemon: pacer stopped packets=196056 underruns=0 p99_ms=0.01 max_ms=0.026395000000000002
on the wire (each zone's first 5 s left out): streams 64 packets 176013 p50_ms 0.010 p99_ms 0.285 max_ms 1.431 worst_drift_ppm 0.8
";

const PACING_IDLE: &str = "\
pacing over 120 s on loopback (deviation from each sender's ideal 20 ms grid, each sender's first 5 s left out)
sender      packets    p50_ms    p99_ms    max_ms  drift_ppm
loa            5749     0.013     0.052     0.873        0.7
loa's own view: loa: played 1 file(s), 0 skipped, 2:00 of audio; 6000 packets, pacing p99 0.010 ms, max 0.868 ms, 0 underruns
";

const PACING_BUSY: &str = "\
pacing over 120 s on loopback (deviation from each sender's ideal 20 ms grid, each sender's first 5 s left out)
references marked -rt run under chrt -f 10, the SCHED_FIFO priority of loa's pacer thread
sender      packets    p50_ms    p99_ms    max_ms  drift_ppm
loa            5749     0.036     0.064     2.888        4.5
gst            5750     0.094    14.401    34.956        8.3
ffmpeg         5757    70.287   118.985   134.494      -43.0
gst-rt         5750     0.034     0.068     2.750        5.2
ffmpeg-rt      5757    65.997   114.547   116.417     -259.8
loa's own view: loa: played 1 file(s), 0 skipped, 2:00 of audio; 6000 packets, pacing p99 0.010 ms, max 2.864 ms, 0 underruns
";

const MEMORY: &str = "\
8 zones playing            daemon VmHWM after 60 s
3 min MP3                  14.2 MB
180 min MP3                14.3 MB
";

const DAEMON_BUSY: &str = "\
(a CPU burner on each of 2 cores during the offset and preemption runs)
== scheduled start offset (12 fires)
schedule start offset over 12 fires: p50 0.1 ms, max 0.4 ms
== preemption latency (5 runs)
preemption latency: p50 41.5 ms, max 51.8 ms over 5 runs
";

const LIVE: &str = "\
click  1:  114.8 ms
click  2:  120.1 ms
live input → speaker output (jitter buffer 60 ms), 20 clicks: p50 114.8 ms, min 114.7 ms, max 120.1 ms (target ≤ 150 ms: met)
";

const SRTP: &str = "\
== SRTP per packet (examples/srtp_cost, 200000 packets)
200000 packets, Opus payload 98 bytes, RTP packet 110 bytes
plain RTP build (reference):             412 ns/packet
AES_CM_128_HMAC_SHA1_80    build+protect     2731 ns/packet (protect ≈   2319 ns, 6.63× the reference), unprotect   2602 ns/packet, Rust allocations per protect: 0
AEAD_AES_128_GCM           build+protect     1604 ns/packet (protect ≈   1192 ns, 3.89× the reference), unprotect   1433 ns/packet, Rust allocations per protect: 0
== pacing through the daemon: 8 SRTP zones and 8 plain zones, one program, 60 s
pacer: 2026-12-05T02:40:00.000000Z  INFO loa::daemon: pacer stopped packets=48000 underruns=0 p99_ms=0.01 max_ms=0.9
on the wire srtp (first 5 s left out): streams 8 packets 22000 p50_ms 0.012 p99_ms 0.061 max_ms 0.912 worst_drift_ppm 0.6
on the wire plain (first 5 s left out): streams 8 packets 22000 p50_ms 0.011 p99_ms 0.058 max_ms 0.905 worst_drift_ppm 0.6
";

const UNICAST: &str = "\
== 1000 joined speakers on one SRTP zone (unicast), reference: 1 speaker alone on it; 10 timed joins
enrolment: speakers=1010 secs=1.1 ms_each=1.1 (speakers.add on the control socket)
join to first audio: joins=10 median_ms=38.9 min_ms=27.4 max_ms=43.7 welcome_median_ms=4.5
reference: speakers=1 receivers=1 secs=15.0 packets=750 lost=0 lossy_receivers=0 socket_drops=0 p50_ms=0.040 p99_ms=0.094 max_ms=0.767 worst_receiver_p99_ms=0.094 worst_drift_ppm=1.5 fanout_p50_ms=0.000 fanout_max_ms=0.000 daemon_cpu_pct=3.2 pacer_cpu_pct=2.2 skipped_ticks=0 not_sent=0
joins: speakers=1000 of=1000 secs=3.2 failed=0 (4 threads)
unicast: speakers=1000 receivers=1000 secs=30.5 packets=1525000 lost=0 lossy_receivers=0 socket_drops=0 p50_ms=0.241 p99_ms=0.893 max_ms=15.803 worst_receiver_p99_ms=3.799 worst_drift_ppm=17.5 fanout_p50_ms=4.154 fanout_max_ms=8.982 daemon_cpu_pct=32.9 pacer_cpu_pct=25.7 skipped_ticks=0 not_sent=0
receivers: verified=179154 (1 in 10 after the first) rejected=0 sessions_ended=0 errors=0 own_cpu_s=30.5
pacer (whole run): 2026-12-05T05:35:00.600494Z  INFO loa::daemon: pacer stopped packets=1834350 underruns=0 p99_ms=0.14 max_ms=15.61 stalls=0 skipped_ticks=0 longest_stall_ms=0
";

/// Part name → (output, exit status); `None` status leaves no .status file.
type Parts = BTreeMap<&'static str, (String, Option<i32>)>;

fn good_parts() -> Parts {
    [
        ("transcode", TRANSCODE),
        ("capacity", CAPACITY),
        ("pacing-idle", PACING_IDLE),
        ("pacing-busy", PACING_BUSY),
        ("memory", MEMORY),
        ("daemon-busy", DAEMON_BUSY),
        ("live-latency", LIVE),
        ("srtp", SRTP),
        ("unicast", UNICAST),
    ]
    .into_iter()
    .map(|(name, text)| (name, (text.to_string(), Some(0))))
    .collect()
}

struct Table {
    success: bool,
    rows: Vec<String>,
    stdout: String,
}

impl Table {
    /// The rows whose figure starts with `figure`.
    fn rows(&self, figure: &str) -> Vec<&String> {
        let rows: Vec<&String> = self.rows.iter().filter(|r| r.starts_with(&format!("| {figure}"))).collect();
        assert!(!rows.is_empty(), "no row '{figure}' in:\n{}", self.stdout);
        rows
    }

    fn row(&self, figure: &str) -> &String {
        self.rows(figure)[0]
    }
}

fn reads_met(row: &str) -> bool {
    row.contains("— met")
}

fn table(parts: &Parts) -> Table {
    let dir = tempfile::tempdir().unwrap();
    for (name, (text, status)) in parts {
        std::fs::write(dir.path().join(format!("{name}.txt")), text).unwrap();
        if let Some(status) = status {
            std::fs::write(dir.path().join(format!("{name}.status")), format!("{status}\n")).unwrap();
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-table.py");
    let out = Command::new("python3").arg(script).arg(dir.path()).output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.code().is_some(), "the table builder crashed: {out:?}");
    assert!(
        out.stderr.is_empty(),
        "the table builder wrote to stderr (a traceback?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| figure") && !l.starts_with("| ---"))
        .map(String::from)
        .collect();
    Table { success: out.status.success(), rows, stdout }
}

#[test]
fn a_complete_run_judges_every_target_and_exits_zero() {
    let t = table(&good_parts());
    assert!(t.success, "{}", t.stdout);
    assert_eq!(t.rows.len(), 17, "{}", t.stdout);
    for row in &t.rows {
        assert!(reads_met(row) && !row.contains("not met") && !row.contains("not measured"), "{row}");
        // Five cells: a '|' inside one (say "|drift|") would split it.
        let separators = row.replace("\\|", "").matches('|').count();
        assert_eq!(separators, 6, "not five cells: {row}");
    }
    // Every target each row names, judged one by one.
    let idle = t.row("pacing on the wire, idle");
    for target in ["p99 ≤ 0.1 ms — met", "max ≤ 1 ms — met", "drift within ±20 ppm — met"] {
        assert!(idle.contains(target), "{target} not judged: {idle}");
    }
    let busy = t.row("pacing on the wire, busy");
    for target in ["p99 ≤ 1 ms — met", "max ≤ 5 ms — met"] {
        assert!(busy.contains(target), "{target} not judged: {busy}");
    }
    assert!(busy.contains("under chrt -f like loa p99 0.068"), "the real-time GStreamer reference is shown: {busy}");
    let capacity = t.row("concurrent programs");
    for target in ["N ≥ 64 — met", "all N playing — met", "all N on the wire — met", "0 underruns — met", "p99 ≤ 1 ms — met"] {
        assert!(capacity.contains(target), "{target} not judged: {capacity}");
    }
    let memory = t.row("daemon peak RSS");
    for target in ["≤ 30 MB (3-hour) — met", "≤ 30 MB (3-minute) — met", "3-hour ≤ 1.10 × 3-minute — met"] {
        assert!(memory.contains(target), "{target} not judged: {memory}");
    }
    let cost = t.row("SRTP cost per packet, AES_CM_128_HMAC_SHA1_80");
    assert!(cost.contains("| 2731 ns (protect ≈ 2319 ns) | plain RTP build 412 ns | 6.63× |"), "{cost}");
    assert!(cost.contains("protect ≤ 200 µs (1 % of a 20 ms frame) — met"), "{cost}");
    let on = t.row("pacing through the daemon, SRTP on (8 zones)");
    for target in ["0 underruns — met", "p99 ≤ 1 ms — met", "p99 1.05× plain", "8 plain zones of the same program and pacer: p99 0.058 ms"] {
        assert!(on.contains(target), "{target} not shown: {on}");
    }
    assert!(t.row("pacing through the daemon, SRTP off (8 zones, same run)").contains("p99 ≤ 1 ms — met"));
    let unicast = t.row("unicast SRTP speakers on one zone, 30 s");
    for target in ["N ≥ 1,000 — met", "all N heard — met", "0 lost — met", "0 underruns — met", "0 skipped ticks — met", "p99 ≤ 1 ms — met"] {
        assert!(unicast.contains(target), "{target} not judged: {unicast}");
    }
    assert!(unicast.contains("1 speaker alone on the zone: p99 0.094 ms"), "the reference is shown: {unicast}");
    assert!(unicast.contains("p99 9.50× the reference"), "{unicast}");
    let join = t.row("join to first verified audio");
    assert!(join.contains("median 39 ms, min 27 ms, max 44 ms") && join.contains("max ≤ 1 s — met"), "{join}");
    assert!(t.row("transcode mono (MP3").contains("(libopus 1.6.1)"), "loa's libopus named");
    assert!(t.row("transcode mono (MP3").contains("(libopus 1.3.1)"), "ffmpeg's libopus named");
}

#[test]
fn every_target_a_row_names_is_judged_a_missed_one_among_met_ones_reads_not_met() {
    // The README once showed idle pacing "met" from p99 alone while its max
    // missed the 1 ms target.
    let mut parts = good_parts();
    parts.get_mut("pacing-idle").unwrap().0 = PACING_IDLE.replace("0.873", "1.498");
    let t = table(&parts);
    let idle = t.row("pacing on the wire, idle");
    assert!(idle.contains("p99 ≤ 0.1 ms — met"), "{idle}");
    assert!(idle.contains("max ≤ 1 ms — **not met**"), "{idle}");
    // A measured miss is a result, not a failed run.
    assert!(t.success, "{}", t.stdout);
}

#[test]
fn a_failed_part_reads_not_measured_even_with_numbers_in_its_output() {
    let mut parts = good_parts();
    parts.get_mut("pacing-busy").unwrap().1 = Some(1);
    let t = table(&parts);
    let busy = t.row("pacing on the wire, busy");
    assert!(!reads_met(busy), "{busy}");
    assert!(busy.contains("not measured (part pacing-busy failed (exit status 1))"), "{busy}");
    assert!(!t.success, "a failed part must fail the run:\n{}", t.stdout);
    // The other parts' rows are still judged.
    assert!(reads_met(t.row("pacing on the wire, idle")));
}

#[test]
fn when_every_part_failed_no_row_reads_met() {
    let mut parts = good_parts();
    for (_, status) in parts.values_mut() {
        *status = Some(1);
    }
    let t = table(&parts);
    assert_eq!(t.rows.len(), 17, "{}", t.stdout);
    for row in &t.rows {
        assert!(!reads_met(row) && !row.contains("not met") && row.contains("not measured (part "), "{row}");
    }
    assert!(!t.success);
}

#[test]
fn a_part_that_left_no_status_or_no_output_is_not_measured() {
    let mut parts = good_parts();
    parts.get_mut("memory").unwrap().1 = None;
    parts.remove("live-latency");
    let t = table(&parts);
    let memory = t.row("daemon peak RSS");
    assert!(!reads_met(memory) && memory.contains("part memory left no exit status"), "{memory}");
    let live = t.row("loa live");
    assert!(!reads_met(live) && live.contains("part live-latency left no output"), "{live}");
    assert!(!t.success);
}

#[test]
fn an_empty_output_file_is_not_measured() {
    let mut parts = good_parts();
    parts.get_mut("transcode").unwrap().0 = String::new();
    let t = table(&parts);
    let rows = t.rows("transcode");
    assert_eq!(rows.len(), 4, "{}", t.stdout);
    for row in rows {
        assert!(!reads_met(row) && row.contains("not measured (part transcode printed nothing)"), "{row}");
    }
    assert!(!t.success);
}

#[test]
fn a_missing_value_is_not_measured() {
    // The daemon died before logging its pacer statistics.
    let mut parts = good_parts();
    parts.get_mut("capacity").unwrap().0 = CAPACITY.lines().filter(|l| !l.starts_with("pacer:")).collect::<Vec<_>>().join("\n");
    let t = table(&parts);
    let capacity = t.row("concurrent programs");
    assert!(!reads_met(capacity), "{capacity}");
    assert!(capacity.contains("not measured (no line matching '^pacer:' in capacity.txt)"), "{capacity}");
    assert!(!t.success);
}

#[test]
fn a_question_mark_is_not_measured_where_awk_once_read_it_as_zero() {
    let mut parts = good_parts();
    parts.get_mut("daemon-busy").unwrap().0 = DAEMON_BUSY.replace("max 51.8 ms", "max ? ms");
    let t = table(&parts);
    let preemption = t.row("emergency preemption");
    assert!(!reads_met(preemption), "{preemption}");
    assert!(preemption.contains("not measured (max in daemon-busy.txt reads '?', not a number)"), "{preemption}");
    assert!(!t.success);
}

#[test]
fn one_missing_figure_leaves_its_whole_row_unjudged() {
    // p99 and max are there, drift is not: the row judges none of them.
    let mut parts = good_parts();
    parts.get_mut("pacing-idle").unwrap().0 = PACING_IDLE.replace("        0.7\n", "        nan\n");
    let t = table(&parts);
    let idle = t.row("pacing on the wire, idle");
    assert!(!reads_met(idle) && idle.contains("not measured (loa drift in pacing-idle.txt reads 'nan'"), "{idle}");
    assert!(!t.success);
}

#[test]
fn a_missing_reference_sender_leaves_the_busy_row_unjudged() {
    let mut parts = good_parts();
    parts.get_mut("pacing-busy").unwrap().0 = PACING_BUSY.lines().filter(|l| !l.starts_with("ffmpeg-rt")).collect::<Vec<_>>().join("\n");
    let t = table(&parts);
    let busy = t.row("pacing on the wire, busy");
    assert!(!reads_met(busy) && busy.contains("not measured (no line matching '^ffmpeg\\-rt\\s'"), "{busy}");
    assert!(!t.success);
}

#[test]
fn fewer_than_five_transcode_runs_are_not_the_figure() {
    let mut parts = good_parts();
    parts.get_mut("transcode").unwrap().0 = TRANSCODE.replace("runs=5", "runs=1");
    let t = table(&parts);
    for row in t.rows("transcode") {
        assert!(!reads_met(row) && row.contains("not measured (only 1 runs of each side (5 needed))"), "{row}");
    }
    assert!(!t.success);
}

#[test]
fn srtp_pacing_without_its_plain_reference_is_not_measured() {
    let mut parts = good_parts();
    parts.get_mut("srtp").unwrap().0 = SRTP.lines().filter(|l| !l.starts_with("on the wire plain")).collect::<Vec<_>>().join("\n");
    let t = table(&parts);
    let on = t.row("pacing through the daemon, SRTP on");
    assert!(!reads_met(on) && on.contains("not measured (no line matching '^on the wire plain\\b' in srtp.txt)"), "{on}");
    // The per-packet cost has its own reference and is still judged.
    assert!(reads_met(t.row("SRTP cost per packet, AEAD_AES_128_GCM")));
    assert!(!t.success);
}

#[test]
fn unicast_speakers_judge_n_loss_and_p99_each() {
    // The run's real p99 (3.093 ms) and a zone that lost packets to 12 of
    // 1000 speakers: measured, so results, not failures of the run.
    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 =
        UNICAST.replace("p99_ms=0.893", "p99_ms=3.093").replace("lost=0 lossy_receivers=0 socket_drops=0 p50_ms=0.241", "lost=40 lossy_receivers=12 socket_drops=0 p50_ms=0.241");
    let t = table(&parts);
    let unicast = t.row("unicast SRTP speakers");
    for target in ["N ≥ 1,000 — met", "0 lost — **not met**", "0 underruns — met", "p99 ≤ 1 ms — **not met**"] {
        assert!(unicast.contains(target), "{target} not judged: {unicast}");
    }
    assert!(t.success, "{}", t.stdout);
}

#[test]
fn fewer_unicast_speakers_heard_than_joined_is_not_met() {
    // The daemon once closed the 513th connection: 512 heard of 1000.
    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 = UNICAST.replace("speakers=1000 receivers=1000", "speakers=512 receivers=512");
    let t = table(&parts);
    let unicast = t.row("unicast SRTP speakers");
    assert!(unicast.contains("N ≥ 1,000 — **not met**") && unicast.contains("all N heard — met"), "{unicast}");
    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 = UNICAST.replace("speakers=1000 receivers=1000", "speakers=1000 receivers=998");
    let unicast = table(&parts).row("unicast SRTP speakers").clone();
    assert!(unicast.contains("all N heard — **not met**"), "{unicast}");
}

#[test]
fn unicast_without_its_one_speaker_reference_or_the_pacer_line_is_not_measured() {
    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 = UNICAST.lines().filter(|l| !l.starts_with("reference:")).collect::<Vec<_>>().join("\n");
    let t = table(&parts);
    let unicast = t.row("unicast SRTP speakers");
    assert!(!reads_met(unicast) && unicast.contains("not measured (no line matching '^reference:' in unicast.txt)"), "{unicast}");
    // The join figure has its own line and is still judged.
    assert!(reads_met(t.row("join to first verified audio")));
    assert!(!t.success);

    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 = UNICAST.lines().filter(|l| !l.starts_with("pacer (whole run)")).collect::<Vec<_>>().join("\n");
    let unicast = table(&parts).row("unicast SRTP speakers").clone();
    assert!(!reads_met(&unicast) && unicast.contains("not measured (no line matching"), "{unicast}");
}

#[test]
fn a_slow_join_reads_not_met_and_a_missing_one_not_measured() {
    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 = UNICAST.replace("max_ms=43.7 welcome", "max_ms=1250.0 welcome");
    let join = table(&parts).row("join to first verified audio").clone();
    assert!(join.contains("max ≤ 1 s — **not met**"), "{join}");
    let mut parts = good_parts();
    parts.get_mut("unicast").unwrap().0 = UNICAST.lines().filter(|l| !l.starts_with("join to first audio")).collect::<Vec<_>>().join("\n");
    let t = table(&parts);
    let join = t.row("join to first verified audio");
    assert!(!reads_met(join) && join.contains("not measured (no line matching '^join to first audio:' in unicast.txt)"), "{join}");
    assert!(!t.success);
}
