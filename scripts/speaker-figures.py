#!/usr/bin/env python3
"""Figures of `loa speaker` (issue 5), measured through the real path on
loopback multicast (run inside the private namespace):

1. decode CPU per stream: `loa stream` sends a SECONDS-long file to a zone,
   one `loa speaker` plays it; speaker CPU time (utime+stime from /proc) vs
   audio seconds = real-time factor;
2. latency from the wire to the speaker's output at the default 60 ms jitter
   buffer: a file that starts with a click is streamed; a socket joined to
   the group timestamps the first RTP packet, and the speaker's raw PCM on
   stdout is read until the click appears.

    scripts/netns.sh scripts/speaker-figures.py [SECONDS] [RUNS]
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave

LOA = "target/release/loa"
GROUP, PORT = "239.255.95.1", 5060


def write_wav(path, seconds, click):
    rate = 48000
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = bytearray()
        import math
        for n in range(int(seconds * rate)):
            if click:
                v = 30000 if n < 480 else 0          # 10 ms click, then silence
            else:
                v = int(8000 * math.sin(2 * math.pi * 440 * n / rate))
            frames += struct.pack("<h", v)
        w.writeframes(bytes(frames))


def config(dirname):
    path = os.path.join(dirname, "loa.toml")
    with open(path, "w") as f:
        f.write('[network]\ninterface = "127.0.0.1"\n[audio]\nfec = true\n'
                f'[[zone]]\nname = "z"\ngroup = "{GROUP}:{PORT}"\nsecurity = "none"\n')
    return path


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decode_cpu(dirname, seconds):
    cfg = config(dirname)
    wav = os.path.join(dirname, "tone.wav")
    write_wav(wav, seconds, click=False)
    speaker = subprocess.Popen([LOA, "speaker", "--group", f"{GROUP}:{PORT}", "--interface", "127.0.0.1",
                                "--bind", "127.0.0.2", "--out", "/dev/null"],
                               stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    subprocess.run([LOA, "stream", "--config", cfg, "--zone", "z", wav], check=True,
                   stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    cpu = cpu_seconds(speaker.pid)
    speaker.terminate()
    speaker.wait()
    print(f"speaker decode: {cpu:.2f} CPU s for {seconds} s of audio = {seconds / max(cpu, 1e-3):.0f}x real time "
          f"({100 * cpu / seconds:.2f} % of one core per stream)")


def latency_once(dirname):
    cfg = config(dirname)
    wav = os.path.join(dirname, "click.wav")
    write_wav(wav, 1.0, click=True)
    # Wire side: first RTP packet's arrival.
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    rx.bind((GROUP, PORT))
    rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                  socket.inet_aton(GROUP) + socket.inet_aton("127.0.0.1"))
    first_packet = []

    def wire():
        rx.settimeout(5)
        try:
            rx.recv(2048)
            first_packet.append(time.monotonic())
        except OSError:
            pass

    speaker = subprocess.Popen([LOA, "speaker", "--group", f"{GROUP}:{PORT}", "--interface", "127.0.0.1",
                                "--bind", "127.0.0.2", "--out", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    t = threading.Thread(target=wire)
    t.start()
    sender = subprocess.Popen([LOA, "stream", "--config", cfg, "--zone", "z", wav], stderr=subprocess.DEVNULL)
    click_at = None
    deadline = time.monotonic() + 5
    fd = speaker.stdout.fileno()
    while time.monotonic() < deadline and click_at is None:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        for i in range(0, len(chunk) - 1, 2):
            if abs(struct.unpack_from("<h", chunk, i)[0]) > 10000:
                click_at = time.monotonic()
                break
    # Stop reading first: a speaker blocked on a full pipe cannot exit.
    speaker.stdout.close()
    speaker.terminate()
    speaker.wait()
    sender.wait()
    t.join()
    rx.close()
    if click_at is None or not first_packet:
        return None
    return (click_at - first_packet[0]) * 1e3


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as d:
        decode_cpu(d, seconds)
        lat = sorted(x for x in (latency_once(d) for _ in range(runs)) if x is not None)
        if lat:
            print(f"wire → speaker output latency (jitter buffer 60 ms): p50 {lat[len(lat) // 2]:.1f} ms, "
                  f"max {lat[-1]:.1f} ms over {len(lat)} runs")
        else:
            print("latency: the click never came out of the speaker")
            sys.exit(1)


if __name__ == "__main__":
    main()
