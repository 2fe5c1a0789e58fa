#!/usr/bin/env python3
"""The table of `scripts/bench.sh`: reads each part's output and exit status
from DIR and prints one markdown row per figure, with a verdict for every
target the row names.

    scripts/bench-table.py DIR [TITLE]

DIR holds, for each part NAME (transcode, capacity, pacing-idle, pacing-busy,
memory, daemon-busy, live-latency, srtp, unicast), NAME.txt (what the part printed) and
NAME.status (its exit status). A verdict needs a number: a figure that is
missing or unparsable, or that comes from a part that failed, printed
nothing or left no status, reads "not measured (<reason>)", and so does the
whole row it belongs to (no target of that row reads "met"). Exit status 1
if anything was not measured, 0 otherwise; a target measured and missed
reads "**not met**" and is a result, not a failure of the run.

Kept apart from the benchmarks so it can be tested on made-up part outputs
(tests/bench_verdict.rs).
"""
import math
import os
import re
import sys


class NotMeasured:
    """A figure without a number, and why."""

    def __init__(self, reason):
        self.reason = reason

    def __str__(self):
        return "?"


NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def number(text, what):
    """The number in `text`, or NotMeasured saying what was found instead."""
    if isinstance(text, NotMeasured):
        return text
    if text is None:
        return NotMeasured(f"no {what} in the output")
    text = text.strip()
    if not NUMBER.fullmatch(text):
        return NotMeasured(f"{what} reads '{text}', not a number")
    value = float(text)
    if not math.isfinite(value):
        return NotMeasured(f"{what} reads '{text}', not a finite number")
    return value


class Part:
    """One part's output, or why there is none to read figures from."""

    def __init__(self, folder, name):
        self.name = name
        self.text = ""
        self.failure = None
        txt = os.path.join(folder, f"{name}.txt")
        status = os.path.join(folder, f"{name}.status")
        if not os.path.exists(txt):
            self.failure = f"part {name} left no output ({name}.txt missing)"
            return
        self.text = open(txt, encoding="utf-8", errors="replace").read()
        if not os.path.exists(status):
            self.failure = f"part {name} left no exit status"
        else:
            code = open(status).read().strip()
            if code != "0":
                self.failure = f"part {name} failed (exit status {code or 'empty'})"
        if self.failure is None and not self.text.strip():
            self.failure = f"part {name} printed nothing"

    def line(self, pattern):
        """The last line matching `pattern` (a regex), or None."""
        found = [l for l in self.text.splitlines() if re.search(pattern, l)]
        return found[-1] if found else None

    def figure(self, line_pattern, value_pattern, what):
        """A number from the line matching `line_pattern`: the group 1 of
        `value_pattern` in it. NotMeasured if the part failed, the line or
        the value is missing, or the value is not a number."""
        if self.failure:
            return NotMeasured(self.failure)
        line = self.line(line_pattern)
        if line is None:
            return NotMeasured(f"no line matching '{line_pattern}' in {self.name}.txt")
        m = re.search(value_pattern, line)
        if m is None:
            return NotMeasured(f"no {what} in {self.name}.txt")
        return number(m.group(1), f"{what} in {self.name}.txt")

    def key(self, line_pattern, key, what=None):
        """The value of `key=…` on the line matching `line_pattern`."""
        return self.figure(line_pattern, rf"(?:^|\s){re.escape(key)}=(\S*)", what or key)


def judge(value, op, bound):
    """'met', '**not met**' or a NotMeasured."""
    if isinstance(value, NotMeasured):
        return value
    ok = {"<=": value <= bound, ">=": value >= bound, "==": value == bound}[op]
    return "met" if ok else "**not met**"


def fmt(value, spec=".3f"):
    return "?" if isinstance(value, NotMeasured) else format(value, spec)


class Table:
    def __init__(self):
        self.rows = []
        self.not_measured = 0
        self.not_met = 0

    def row(self, figure, loa, reference, ratio, targets, needs=()):
        """`targets`: (text, value, op, bound), every one judged; `needs`:
        the row's other figures (references, counts). A row with any of
        them not measured judges none of its targets."""
        verdicts = [(text, judge(value, op, bound)) for text, value, op, bound in targets]
        missing = [v.reason for _, v in verdicts if isinstance(v, NotMeasured)]
        missing += [v.reason for v in needs if isinstance(v, NotMeasured)]
        if missing:
            # Each reason once, in order.
            reasons = "; ".join(dict.fromkeys(missing))
            cell = ", ".join(text for text, _ in verdicts) + f" — not measured ({reasons})"
            self.not_measured += 1
        else:
            cell = ", ".join(f"{text} — {v}" for text, v in verdicts)
            self.not_met += sum(1 for _, v in verdicts if v != "met")
        self.rows.append((figure, loa, reference, ratio, cell))

    def print(self, title):
        print()
        print(f"## {title}")
        print()
        print("| figure | loa | reference (same run) | ratio / value | target |")
        print("| --- | --- | --- | --- | --- |")
        for r in self.rows:
            # A '|' inside a cell would split it (GitHub markdown tables).
            print("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        print()
        print(f"{len(self.rows)} rows: {self.not_measured} not measured, {self.not_met} targets not met")


def transcode(table, part):
    versions = part.line(r"^libopus: ")
    loa_lib = ff_lib = "libopus ?"
    if versions and not part.failure:
        m = re.search(r"loa links (libopus [^\s;,()]+).*links (libopus [^\s;,()]+)", versions)
        if m:
            loa_lib, ff_lib = m.group(1), m.group(2)
    for case in ("mono", "stereo"):
        line = rf"^figures {case}:"
        runs = part.key(line, "runs")
        # Fewer than 5 runs per side is not the figure the target is about.
        if not isinstance(runs, NotMeasured) and runs < 5:
            runs = NotMeasured(f"only {runs:.0f} runs of each side (5 needed)")
        loa, ff = part.key(line, "loa_rtf"), part.key(line, "ffmpeg_rtf")
        r, lo, hi = (part.key(line, k) for k in ("loa_ffmpeg", "loa_ffmpeg_min", "loa_ffmpeg_max"))
        table.row(f"transcode {case} (MP3 → Opus), real-time factor, whole process, median of {fmt(runs, '.0f')}",
                  f"{fmt(loa, '.1f')}× ({loa_lib})", f"ffmpeg -threads 1 {fmt(ff, '.1f')}× ({ff_lib})",
                  f"{fmt(r, '.2f')}× ({fmt(lo, '.2f')}–{fmt(hi, '.2f')})",
                  [("median ≥ 1.5×", r, ">=", 1.5)], needs=(runs, loa, ff, lo, hi))
        loop, enc = part.key(line, "loa_loop_rtf"), part.key(line, "libopus_rtf")
        r, lo, hi = (part.key(line, k) for k in ("loa_libopus", "loa_libopus_min", "loa_libopus_max"))
        table.row(f"transcode {case} vs libopus encode alone, in-process loop, median of {fmt(runs, '.0f')}",
                  f"{fmt(loop, '.1f')}×", f"{loa_lib} {fmt(enc, '.1f')}×",
                  f"{fmt(r, '.2f')}× ({fmt(lo, '.2f')}–{fmt(hi, '.2f')})",
                  [("median ≥ 0.85×", r, ">=", 0.85)], needs=(runs, loop, enc, lo, hi))


def capacity(table, part):
    requested = part.figure(r"^programs:", r"(\S+) requested", "programs requested")
    playing = part.figure(r"^programs:", r"(\S+) still playing", "programs still playing")
    secs = part.figure(r"^programs:", r"after (\S+?) ?s\b", "run length")
    underruns = part.key(r"^pacer:", "underruns")
    streams = part.figure(r"^on the wire", r"streams (\S+)", "streams on the wire")
    p99 = part.figure(r"^on the wire", r"p99_ms (\S+)", "wire p99")
    mx = part.figure(r"^on the wire", r"max_ms (\S+)", "wire max")
    cpu = part.figure(r"CPU:", r"CPU: (\S+) %", "daemon CPU")
    rss = part.figure(r"CPU:", r"peak RSS (\S+) MB", "peak RSS")
    n = requested if not isinstance(requested, NotMeasured) else math.nan
    table.row(f"concurrent programs, {fmt(secs, '.0f')} s",
              f"{fmt(playing, '.0f')} of {fmt(requested, '.0f')} playing, {fmt(streams, '.0f')} on the wire, "
              f"{fmt(underruns, '.0f')} underruns, wire p99 {fmt(p99)} ms (max {fmt(mx)}), "
              f"{fmt(cpu, '.0f')} % of a core, peak RSS {fmt(rss, '.1f')} MB",
              "—", f"N = {fmt(requested, '.0f')}",
              [("N ≥ 64", requested, ">=", 64), ("all N playing", playing, "==", n),
               ("all N on the wire", streams, "==", n), ("0 underruns", underruns, "==", 0),
               ("p99 ≤ 1 ms", p99, "<=", 1.0)], needs=(secs, mx, cpu, rss))


def sender(part, name):
    """p99, max and drift of a sender's row in pacing.sh's output."""
    row = rf"^{re.escape(name)}\s"
    cols = r"^\S+\s+(?:\S+)\s+(?:\S+)\s+"
    return (part.figure(row, cols + r"(\S+)", f"{name} p99"),
            part.figure(row, cols + r"\S+\s+(\S+)", f"{name} max"),
            part.figure(row, cols + r"\S+\s+\S+\s+(\S+)", f"{name} drift"))


def pacing(table, idle, busy):
    p99, mx, drift = sender(idle, "loa")
    table.row("pacing on the wire, idle machine", f"p99 {fmt(p99)} ms, max {fmt(mx)} ms, drift {fmt(drift, '+.1f')} ppm",
              "—", "—",
              [("p99 ≤ 0.1 ms", p99, "<=", 0.1), ("max ≤ 1 ms", mx, "<=", 1.0),
               ("drift within ±20 ppm", drift if isinstance(drift, NotMeasured) else abs(drift), "<=", 20.0)])
    p99, mx, _ = sender(busy, "loa")
    refs, needs = [], []
    for name, label in (("gst", "GStreamer udpsink"), ("ffmpeg", "ffmpeg -re")):
        r99, rmax, _ = sender(busy, name)
        t99, tmax, _ = sender(busy, f"{name}-rt")
        refs.append(f"{label} p99 {fmt(r99)} / max {fmt(rmax)} ms, under chrt -f like loa p99 {fmt(t99)} / max {fmt(tmax)} ms")
        # The references are part of the row: without them it is not the figure.
        needs += [r99, rmax, t99, tmax]
    table.row("pacing on the wire, busy machine", f"p99 {fmt(p99)} ms, max {fmt(mx)} ms", "; ".join(refs), "—",
              [("p99 ≤ 1 ms", p99, "<=", 1.0), ("max ≤ 5 ms", mx, "<=", 5.0)], needs=needs)


def memory(table, part):
    short = part.figure(r"^3 min", r"(\S+) MB", "3-minute file peak RSS")
    long = part.figure(r"^180 min", r"(\S+) MB", "3-hour file peak RSS")
    if isinstance(short, NotMeasured) or isinstance(long, NotMeasured):
        ratio = short if isinstance(short, NotMeasured) else long
    elif short <= 0:
        ratio = NotMeasured(f"3-minute file peak RSS reads {short} MB")
    else:
        ratio = long / short
    table.row("daemon peak RSS, 8 zones playing", f"3-hour file {fmt(long, '.1f')} MB", f"3-minute file {fmt(short, '.1f')} MB",
              f"{fmt(ratio, '.2f')}×",
              [("≤ 30 MB (3-hour)", long, "<=", 30.0), ("≤ 30 MB (3-minute)", short, "<=", 30.0),
               ("independent of length: 3-hour ≤ 1.10 × 3-minute", ratio, "<=", 1.10)])


def daemon(table, part, live):
    for label, line, ref, bound in (
        ("scheduled start offset, machine busy", r"schedule start offset over", "cron instant", 50.0),
        ("emergency preemption latency, machine busy", r"^preemption latency", "CLI command", 100.0),
    ):
        p50 = part.figure(line, r"p50 (\S+) ms", "p50")
        mx = part.figure(line, r"max (\S+) ms", "max")
        count = part.figure(line, r"over (\S+) (?:runs|fires)", "count")
        table.row(label, f"p50 {fmt(p50, '.1f')} ms, max {fmt(mx, '.1f')} ms over {fmt(count, '.0f')}", ref, "—",
                  [(f"max ≤ {bound:.0f} ms", mx, "<=", bound)], needs=(p50, count))
    line = r"^live input"
    p50 = live.figure(line, r"p50 (\S+) ms", "p50")
    mn = live.figure(line, r"min (\S+) ms", "min")
    mx = live.figure(line, r"max (\S+) ms", "max")
    clicks = live.figure(line, r"(\S+) clicks", "click count")
    table.row("loa live: input → speaker output, 60 ms jitter buffer",
              f"p50 {fmt(p50, '.1f')} ms, min {fmt(mn, '.1f')} ms, max {fmt(mx, '.1f')} ms over {fmt(clicks, '.0f')} clicks",
              "click written to loa live --stdin", "—",
              [("max ≤ 150 ms", mx, "<=", 150.0)], needs=(p50, mn, clicks))


def srtp(table, part):
    """SRTP against plain RTP, same run: the cost per packet of each suite,
    and pacing through one daemon sending to SRTP and plain zones at once."""
    reference = part.figure(r"^plain RTP build", r"(\S+) ns/packet", "plain RTP build time")
    for suite in ("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_128_GCM"):
        line = rf"^{suite}\s"
        total = part.figure(line, r"build\+protect\s+(\S+) ns/packet", f"{suite} build+protect time")
        protect = part.figure(line, r"protect ≈\s*(\S+) ns", f"{suite} protect time")
        ratio = part.figure(line, r"(\S+)× the reference", f"{suite} ratio")
        # The pacer seals after the tick's sends, but every zone's protect
        # must fit the 20 ms frame many times over: 1 % of it is 200 µs.
        table.row(f"SRTP cost per packet, {suite}, build + protect", f"{fmt(total, '.0f')} ns (protect ≈ {fmt(protect, '.0f')} ns)",
                  f"plain RTP build {fmt(reference, '.0f')} ns", f"{fmt(ratio, '.2f')}×",
                  [("protect ≤ 200 µs (1 % of a 20 ms frame)", protect, "<=", 200_000.0)], needs=(reference, total, ratio))
    underruns = part.key(r"^pacer:", "underruns")
    sides = {}
    for name in ("srtp", "plain"):
        line = rf"^on the wire {name}\b"
        sides[name] = (part.figure(line, r"streams (\S+)", f"{name} streams"), part.figure(line, r"p99_ms (\S+)", f"{name} wire p99"),
                       part.figure(line, r"max_ms (\S+)", f"{name} wire max"))
    (s_n, s99, smax), (p_n, p99, pmax) = sides["srtp"], sides["plain"]
    if any(isinstance(v, NotMeasured) for v in (s99, p99)):
        ratio = s99 if isinstance(s99, NotMeasured) else p99
    elif p99 <= 0:
        ratio = NotMeasured(f"plain wire p99 reads {p99} ms")
    else:
        ratio = s99 / p99
    table.row(f"pacing through the daemon, SRTP on ({fmt(s_n, '.0f')} zones)",
              f"wire p99 {fmt(s99)} ms, max {fmt(smax)} ms, {fmt(underruns, '.0f')} underruns",
              f"{fmt(p_n, '.0f')} plain zones of the same program and pacer: p99 {fmt(p99)} ms, max {fmt(pmax)} ms",
              f"p99 {fmt(ratio, '.2f')}× plain",
              [("0 underruns", underruns, "==", 0), ("p99 ≤ 1 ms", s99, "<=", 1.0)], needs=(s_n, smax, p_n, p99, pmax, ratio))
    table.row(f"pacing through the daemon, SRTP off ({fmt(p_n, '.0f')} zones, same run)",
              f"wire p99 {fmt(p99)} ms, max {fmt(pmax)} ms, {fmt(underruns, '.0f')} underruns",
              "—", "—", [("0 underruns", underruns, "==", 0), ("p99 ≤ 1 ms", p99, "<=", 1.0)], needs=(p_n, pmax))


def unicast(table, part):
    """Joined speakers over unicast SRTP (scripts/bench-unicast.sh): N of
    them on one zone against one alone on it, same daemon and run; and the
    time from the start of a join to its first verified packet."""
    line = r"^unicast:"
    speakers, heard, secs = part.key(line, "speakers"), part.key(line, "receivers"), part.key(line, "secs")
    lost, p99, mx = part.key(line, "lost"), part.key(line, "p99_ms"), part.key(line, "max_ms")
    worst, fan = part.key(line, "worst_receiver_p99_ms"), part.key(line, "fanout_max_ms")
    cpu, pacer_cpu, skipped = part.key(line, "daemon_cpu_pct"), part.key(line, "pacer_cpu_pct"), part.key(line, "skipped_ticks")
    underruns = part.key(r"^pacer \(whole run\):", "underruns")
    ref = r"^reference:"
    r99, rmax, rcpu = part.key(ref, "p99_ms", "reference p99_ms"), part.key(ref, "max_ms", "reference max_ms"), part.key(ref, "daemon_cpu_pct", "reference daemon_cpu_pct")
    if isinstance(p99, NotMeasured) or isinstance(r99, NotMeasured):
        ratio = p99 if isinstance(p99, NotMeasured) else r99
    elif r99 <= 0:
        ratio = NotMeasured(f"reference p99 reads {r99} ms")
    else:
        ratio = p99 / r99
    all_heard = speakers if not isinstance(speakers, NotMeasured) else math.nan
    table.row(f"unicast SRTP speakers on one zone, {fmt(secs, '.0f')} s",
              f"{fmt(heard, '.0f')} of {fmt(speakers, '.0f')} joined speakers heard it, {fmt(lost, '.0f')} packets lost, "
              f"{fmt(underruns, '.0f')} underruns, {fmt(skipped, '.0f')} skipped ticks, wire p99 {fmt(p99)} ms (max {fmt(mx)}, "
              f"worst receiver p99 {fmt(worst)}), first to last speaker ≤ {fmt(fan, '.2f')} ms, daemon {fmt(cpu, '.0f')} % of a core "
              f"(pacer {fmt(pacer_cpu, '.0f')} %)",
              f"1 speaker alone on the zone: p99 {fmt(r99)} ms, max {fmt(rmax)} ms, daemon {fmt(rcpu, '.0f')} %",
              f"p99 {fmt(ratio, '.2f')}× the reference",
              [("N ≥ 1,000", heard, ">=", 1000), ("all N heard", heard, "==", all_heard), ("0 lost", lost, "==", 0),
               ("0 underruns", underruns, "==", 0), ("0 skipped ticks", skipped, "==", 0), ("p99 ≤ 1 ms", p99, "<=", 1.0)],
              needs=(secs, mx, worst, fan, cpu, pacer_cpu, rmax, rcpu, ratio))
    line = r"^join to first audio:"
    joins, p50 = part.key(line, "joins"), part.key(line, "median_ms")
    mn, mx, welcome = part.key(line, "min_ms"), part.key(line, "max_ms"), part.key(line, "welcome_median_ms")
    table.row(f"join to first verified audio, program on air, loopback, {fmt(joins, '.0f')} joins",
              f"median {fmt(p50, '.0f')} ms, min {fmt(mn, '.0f')} ms, max {fmt(mx, '.0f')} ms",
              f"its TLS join alone (connect to welcome): median {fmt(welcome, '.0f')} ms", "—",
              [("max ≤ 1 s", mx, "<=", 1000.0)], needs=(joins, p50, mn, welcome))


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: bench-table.py DIR [TITLE]")
    folder = sys.argv[1]
    title = sys.argv[2] if len(sys.argv) > 2 else "loa performance"
    part = lambda name: Part(folder, name)
    table = Table()
    transcode(table, part("transcode"))
    capacity(table, part("capacity"))
    pacing(table, part("pacing-idle"), part("pacing-busy"))
    memory(table, part("memory"))
    daemon(table, part("daemon-busy"), part("live-latency"))
    srtp(table, part("srtp"))
    unicast(table, part("unicast"))
    table.print(title)
    sys.exit(1 if table.not_measured else 0)


if __name__ == "__main__":
    main()
