#!/usr/bin/env python3
"""End-to-end latency of `loa live` (issue 7): from the operator's input to
the reference speaker's output at its default 60 ms jitter buffer, through
the real path on loopback multicast (run inside the private namespace):

    raw PCM on `loa live --stdin` → control socket → daemon (convert,
    level, Opus, pacer) → RTP multicast → `loa speaker --out -` (jitter
    buffer, decode) → raw PCM on its stdout

This script plays the microphone: it writes 10 ms pieces of silence on the
clock, with a 5 ms click every second (at a different place in its piece
each time, so clicks fall at every phase of the daemon's 20 ms frames). A sound
card hands over a piece when its last sample is captured, so a click's
input instant is taken as the write time minus 10 ms (the capture period
counts against loa). The speaker writes each 20 ms frame to stdout when it
plays it; a thread timestamps every frame, so a click's output instant is
its frame's time plus the click's offset in the frame.

    scripts/netns.sh scripts/live-latency.py [CLICKS]

Prints every click's latency, then p50 / max against the 150 ms target.
"""
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time

LOA = "target/release/loa"
GROUP, PORT = "239.255.95.7", 5070
RATE = 48000
PIECE = RATE // 100          # 10 ms of input per write
FRAME_BYTES = 960 * 2        # one 20 ms mono frame out of the speaker
TARGET_MS = 150.0


def click_pieces(offset):
    """Two pieces holding a 5 ms click that starts `offset` samples into
    the first (clicks land at every phase of the 20 ms frame grid)."""
    samples = [0] * (2 * PIECE)
    for n in range(RATE // 200):
        samples[offset + n] = int(0.6 * math.sin(2 * math.pi * 2000 * n / RATE) * 32767)
    return struct.pack(f"<{PIECE}h", *samples[:PIECE]), struct.pack(f"<{PIECE}h", *samples[PIECE:])


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    sys.exit(f"live-latency: {what}")


def main():
    clicks = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    if not os.path.exists(LOA):
        sys.exit(f"live-latency: build first: cargo build --release ({LOA} is missing)")
    work = tempfile.mkdtemp(prefix="loa-live-latency-")
    sock = os.path.join(work, "loa.sock")
    cfg = os.path.join(work, "loa.toml")
    with open(cfg, "w") as f:
        f.write('[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
                f'[daemon]\nsocket = "{sock}"\nstate_dir = "{work}/state"\n'
                f'[[zone]]\nname = "z"\ngroup = "{GROUP}:{PORT}"\nsecurity = "none"\n')
    log = open(os.path.join(work, "daemon.log"), "w")
    daemon = subprocess.Popen([LOA, "serve", "--config", cfg], stderr=log, stdout=subprocess.DEVNULL)
    wait_for(lambda: subprocess.run([LOA, "status", "--socket", sock], capture_output=True).returncode == 0,
             15, "the daemon did not start")

    speaker = subprocess.Popen([LOA, "speaker", "--group", f"{GROUP}:{PORT}", "--interface", "127.0.0.1",
                                "--out", "-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    onsets = []   # output instants of clicks (monotonic s)

    def listen():
        fd = speaker.stdout.fileno()
        pending = b""
        quiet = RATE  # samples since the last loud one
        while True:
            data = os.read(fd, FRAME_BYTES)
            now = time.monotonic()
            if not data:
                return
            pending += data
            # Whole frames only: each was written at its playout instant.
            while len(pending) >= FRAME_BYTES:
                frame, pending = pending[:FRAME_BYTES], pending[FRAME_BYTES:]
                for i, v in enumerate(struct.unpack(f"<{FRAME_BYTES // 2}h", frame)):
                    if abs(v) > 3000:
                        if quiet > RATE // 5:
                            onsets.append(now + i / RATE)
                        quiet = 0
                    else:
                        quiet += 1

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(1.0)  # the speaker joins the group

    live = subprocess.Popen([LOA, "live", "--stdin", "--rate", str(RATE), "--channels", "1", "--zones", "z",
                             "--socket", sock], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    on_air = threading.Event()

    def cli_lines():
        for line in live.stderr:
            if b"ON AIR" in line:
                on_air.set()

    threading.Thread(target=cli_lines, daemon=True).start()
    silence = bytes(PIECE * 2)
    inputs = []
    carry = None  # the second piece of a click that crossed a piece boundary
    start = time.monotonic()
    n = 0
    # Silence until ON AIR, then one click per second.
    while len(inputs) < clicks:
        due = start + n * PIECE / RATE
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        piece = carry or silence
        carry = None
        if on_air.is_set() and n % 100 == 50 and time.monotonic() - start > 1.0:
            offset = (len(inputs) * 97) % PIECE
            piece, carry = click_pieces(offset)
            inputs.append(time.monotonic() - PIECE / RATE + offset / RATE)
        live.stdin.write(piece)
        live.stdin.flush()
        n += 1
        if n > 100 * (clicks + 30):
            break
    for _ in range(50):  # half a second of silence to carry the last click out
        live.stdin.write(silence)
        live.stdin.flush()
        time.sleep(PIECE / RATE)
    live.stdin.close()
    live_status = live.wait(timeout=15)
    time.sleep(0.5)
    speaker.terminate()
    speaker.wait()
    daemon.terminate()
    daemon_status = daemon.wait()
    # A figure from a run whose daemon or client failed is no figure.
    if live_status != 0:
        sys.exit(f"live-latency: loa live exited with status {live_status} (see {work}/daemon.log)")
    if daemon_status != 0:
        sys.exit(f"live-latency: the daemon exited with status {daemon_status} after SIGTERM (see {work}/daemon.log)")

    if len(onsets) != len(inputs):
        sys.exit(f"live-latency: {len(inputs)} clicks sent, {len(onsets)} heard (see {work}/daemon.log)")
    lat = sorted((o - i) * 1000 for o, i in zip(onsets, inputs))
    for i, (o, s) in enumerate(zip(onsets, inputs)):
        print(f"click {i + 1:2}: {(o - s) * 1000:6.1f} ms")
    p50, worst = lat[len(lat) // 2], lat[-1]
    verdict = "met" if worst <= TARGET_MS else "NOT MET"
    print(f"live input → speaker output (jitter buffer 60 ms), {len(lat)} clicks: "
          f"p50 {p50:.1f} ms, min {lat[0]:.1f} ms, max {worst:.1f} ms (target ≤ {TARGET_MS:.0f} ms: {verdict})")


if __name__ == "__main__":
    main()
