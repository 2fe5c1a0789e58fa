#!/usr/bin/env bash
# `make demo`: stream the shipped assets to the demo zone on loopback while a
# receiver on the same machine (ffmpeg, opening the zone's SDP) decodes what
# arrives to a WAV. Runs in a private network namespace: nothing leaves lo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  cargo build --release --locked --bin loa
  exec scripts/netns.sh "$0" "$@"
fi

LOA=target/release/loa
CONFIG=config/demo.toml
ZONE=thon-1
mkdir -p out
$LOA check --config "$CONFIG"
$LOA sdp --config "$CONFIG" --zone "$ZONE" > out/demo.sdp
echo "demo: zone SDP written to out/demo.sdp:"
sed 's/^/    /' out/demo.sdp

rm -f out/demo-received.wav
ffmpeg -hide_banner -loglevel error -protocol_whitelist file,udp,rtp \
  -i out/demo.sdp -ac 1 -y out/demo-received.wav &
receiver=$!
sleep 1 # let the receiver join the group before the first packet

echo "demo: streaming assets/ to zone $ZONE ..."
$LOA stream --config "$CONFIG" --zone "$ZONE" \
  assets/thong-bao.flac assets/tones-44k1-stereo.mp3 assets/chime.ogg
sleep 0.5
kill -INT "$receiver" 2>/dev/null || true
wait "$receiver" 2>/dev/null || true

seconds=$(ffprobe -v error -show_entries format=duration -of csv=p=0 out/demo-received.wav)
echo "demo: the receiver decoded ${seconds%.*} s of audio into out/demo-received.wav"
echo "demo: play it with: aplay out/demo-received.wav   (or any audio player)"
