#!/usr/bin/env bash
# `make demo`: starts the loa daemon on config/demo.toml in a private network
# namespace (nothing leaves loopback), plays the demo playlist on hamlet 1
# while two reference loudspeakers in the same namespace play it from the
# zone's SDP (SRTP: they hold its key and verify every packet), one of them
# recording 15 s to a WAV, and a third joins loa over TLS with its enrolled
# credential and gets the zone as unicast SRTP; then shows `loa status`. The daemon keeps
# running — its schedule chimes every minute — until `make demo-stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin loa
LOA=target/release/loa
CONFIG=config/demo.toml
STATE=/tmp/loa-demo
PIDFILE=$STATE/loa.pid
mkdir -p "$STATE" out

$LOA check --config "$CONFIG"
scripts/demo-stop.sh quiet

# The daemon gets its own network namespace whose only interface is lo with
# multicast routed to it. The control socket is a file, so the CLI reaches
# it from outside the namespace.
RUST_LOG=${RUST_LOG:-info} setsid unshare --net -- sh -c \
  'ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo && exec "$0" serve --config "$1"' \
  "$LOA" "$CONFIG" > "$STATE/loa.log" 2>&1 < /dev/null &
echo $! > "$PIDFILE"
for _ in $(seq 100); do
  $LOA status --config "$CONFIG" > /dev/null 2>&1 && break
  sleep 0.1
done
echo "demo: daemon running (pid $(cat "$PIDFILE")), log in $STATE/loa.log"

# hamlet 1 is an SRTP zone (the default): its SDP carries the zone's key, so
# `loa sdp` writes it mode 0600 and says on stderr that it is a secret.
$LOA sdp --config "$CONFIG" --zone thon-1 --out out/demo.sdp

# A reference loudspeaker for the market speaker of hamlet 1 (127.0.0.2 in
# the inventory): it plays the zone, verifying every packet against the
# SDP's key, and reports back over RTCP, so `loa endpoints` shows it online.
# It runs as long as the daemon.
nsenter --net="/proc/$(cat "$PIDFILE")/ns/net" \
  "$LOA" speaker --sdp out/demo.sdp --bind 127.0.0.2 \
  --out /dev/null > "$STATE/speaker.log" 2>&1 < /dev/null &
echo $! > "$STATE/speaker.pid"

# The cultural house's box joins loa itself, as a 4G speaker behind the
# carrier's NAT would: enrolled once (its credential, mode 0600, is a
# secret), it opens a TLS connection to [speakers] listen and gets hamlet 1
# as unicast SRTP at the address its keepalives come from.
CREDENTIAL=$STATE/loa-nha-van-hoa.toml
if [ ! -s "$CREDENTIAL" ]; then
  echo "\$ loa speakers add loa-nha-van-hoa --zones thon-1 --out $CREDENTIAL"
  $LOA speakers add --config "$CONFIG" loa-nha-van-hoa --zones thon-1 --out "$CREDENTIAL"
fi
nsenter --net="/proc/$(cat "$PIDFILE")/ns/net" \
  "$LOA" speaker --join 127.0.0.1:5300 --credential "$CREDENTIAL" \
  --out /dev/null > "$STATE/joined.log" 2>&1 < /dev/null &
echo $! > "$STATE/joined.pid"

# The school speaker (127.0.0.3) records what hamlet 1 hears for 15 s.
rm -f out/demo-received.wav
nsenter --net="/proc/$(cat "$PIDFILE")/ns/net" \
  timeout -s INT 15 "$LOA" speaker --sdp out/demo.sdp --bind 127.0.0.3 \
  --out out/demo-received.wav > "$STATE/recorder.log" 2>&1 < /dev/null &
receiver=$!
sleep 1
echo
echo "\$ loa play --playlist tin-tuc --zones thon-1"
$LOA play --config "$CONFIG" --playlist tin-tuc --zones thon-1
sleep 2
echo
echo "\$ loa status"
$LOA status --config "$CONFIG"
echo
echo "\$ loa schedule list"
$LOA schedule list --config "$CONFIG"
echo
# An operator's 3 s live announcement (the shipped spoken notice stands in
# for a microphone): it preempts the news, which resumes after.
echo "\$ ffmpeg -re -i assets/thong-bao.flac -t 3 -f s16le -ar 16000 -ac 1 - | loa live --stdin --rate 16000 --zones thon-1"
ffmpeg -nostdin -hide_banner -loglevel error -re -i assets/thong-bao.flac -t 3 -f s16le -ar 16000 -ac 1 - \
  | $LOA live --config "$CONFIG" --stdin --rate 16000 --zones thon-1 || true
wait "$receiver" || true
echo
echo "\$ loa endpoints"
$LOA endpoints --config "$CONFIG"
echo
echo "\$ loa speakers list"
$LOA speakers list --config "$CONFIG"
echo
echo "\$ loa history"
$LOA history --config "$CONFIG" --limit 10
seconds=$(ffprobe -v error -show_entries format=duration -of csv=p=0 out/demo-received.wav)
echo
echo "demo: the receiver decoded ${seconds%.*} s of hamlet 1 into out/demo-received.wav (aplay it)"
echo "demo: the daemon keeps running and chimes on thon-1 every minute. Try:"
echo "        $LOA status --config $CONFIG"
echo "        $LOA endpoints --config $CONFIG --watch"
echo "        $LOA play --config $CONFIG --zones all --priority emergency assets/chime.ogg"
echo "        arecord -t raw -f S16_LE -r 16000 -c 1 | $LOA live --config $CONFIG --stdin --rate 16000 --zones all"
echo "      stop it with: make demo-stop   (or: kill \$(cat $PIDFILE))"
