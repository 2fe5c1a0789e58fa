#!/usr/bin/env bash
# The README's joined-speaker and SRTP commands, as a newcomer types them
# (issue 15's closing check): a config written as the README shows it, a
# speaker enrolled, joined, heard in `loa speakers list` / `loa endpoints`
# / `loa status`, revoked; `loa sdp` read by `loa speaker --sdp`, ffmpeg
# (a "none" zone and an `mki = false` zone) and GStreamer's srtpdec with
# the README's own commands; then the mistakes a user makes, each refused
# in words with the right exit code. Exits 1 if any step fails.
#
#   cargo build && scripts/netns.sh scripts/walkthrough-speakers.sh
#
# Needs ffmpeg, gst-launch-1.0 (good/bad plugins: srtpdec, opusdec) and
# python3. Everything stays on loopback inside the namespace.
set -u
[ "${LOA_IN_NETNS:-}" = 1 ] || { echo "run me inside scripts/netns.sh (a private network namespace)" >&2; exit 1; }
cd "$(dirname "$0")/.."
LOA=${LOA:-$PWD/target/debug/loa}
[ -x "$LOA" ] || { echo "no $LOA: run cargo build first" >&2; exit 1; }
W=$(mktemp -d /tmp/loa-walk.XXXXXX)
cd "$W"
fails=0
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
# run WANT_EXIT DESCRIPTION CMD...: prints what a user sees, checks the exit code.
run() {
  local want=$1 what=$2; shift 2
  echo; echo "== $what"; echo "\$ $*"
  "$@" >out 2>err; local rc=$?
  sed 's/^/   | /' out | head -30; sed 's/^/  !| /' err | head -20
  if [ "$rc" != "$want" ]; then echo "  FAIL: exit $rc, expected $want"; fails=$((fails+1)); else echo "  ok (exit $rc)"; fi
}
# has FILE REGEX WHY
has() { grep -Eq -- "$2" "$1" || { echo "  FAIL: $3 (no /$2/ in $1)"; fails=$((fails+1)); }; }
mode() { [ "$(stat -c %a "$1")" = 600 ] || { echo "  FAIL: $1 has mode $(stat -c %a "$1"), not 600"; fails=$((fails+1)); }; }
# rms WAV: prints the RMS (0..1) of a 16-bit WAV and its seconds
rms() { python3 - "$1" <<'PY'
import sys, wave, array, math
w = wave.open(sys.argv[1]); n = w.getnframes(); a = array.array('h', w.readframes(n))
r = math.sqrt(sum(x*x for x in a) / max(1, len(a))) / 32768
print(f"{r:.4f} {n / w.getframerate():.1f}")
PY
}
wait_for() { for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

cat > loa.toml <<TOML
[network]
interface = "127.0.0.1"      # required: IPv4 address multicast leaves from

[daemon]
socket = "$W/loa.sock"
state_dir = "$W/state"
media_roots = ["$OLDPWD/assets"]

[security]
suite = "AES_CM_128_HMAC_SHA1_80"   # default; or "AEAD_AES_128_GCM" (RFC 7714)
rotate = "24h"                      # a zone key's lifetime (at least "5s")

[speakers]
listen = "0.0.0.0:5300"     # TLS and UDP on this port; no [speakers]: no joins
keepalive = "15s"           # RFC 6263; keep it under the carrier's UDP timeout
missed_keepalives = 3

[[zone]]
name = "thon-1"
group = "239.255.77.1:5004"  # multicast group:port (RTCP on port+1)

[[zone]]
name = "thon-3"
group = "239.255.77.3:5004"
security = "none"            # "srtp" (default) | "none": plain RTP, for legacy speakers

[[zone]]
name = "thon-4"
group = "239.255.77.4:5004"
mki = false                  # default true; packets name no key (SRTP zones only)
TOML
C=(--config "$W/loa.toml")
ASSET=$OLDPWD/assets/thong-bao.flac

run 0 "help" "$LOA" --help
run 0 "speakers help" "$LOA" speakers --help
run 0 "speakers add help" "$LOA" speakers add --help
run 0 "speaker help" "$LOA" speaker --help
run 0 "sdp help" "$LOA" sdp --help
run 0 "check" "$LOA" check "${C[@]}"

"$LOA" serve "${C[@]}" > loa.log 2>&1 & pids+=($!)
wait_for "$LOA" status "${C[@]}" || { echo "FAIL: the daemon did not answer"; cat loa.log; exit 1; }
run 0 "status" "$LOA" status "${C[@]}"

# A user who forgets --config (the README's speakers block has none).
run 2 "speakers add without --config" "$LOA" speakers add xa-dong --zones thon-1 --out xa-dong.toml

run 0 "enrol" "$LOA" speakers add xa-dong --zones thon-1 --out xa-dong.toml "${C[@]}"
mode xa-dong.toml
for key in speaker daemon daemon_pin zones certificate private_key; do has xa-dong.toml "^$key = " "credential field $key"; done
grep -v -e '^-----' -e '^[A-Za-z0-9+/=]*$' xa-dong.toml | sed 's/^/   cred| /'
run 0 "list before joining" "$LOA" speakers list "${C[@]}"
run 0 "list --json" "$LOA" speakers list --json "${C[@]}"

"$LOA" speaker --join 127.0.0.1:5300 --credential xa-dong.toml --out x.wav > joined.out 2> joined.err & joined=$!; pids+=($joined)
sleep 2
run 0 "list after joining" "$LOA" speakers list "${C[@]}"
has out "xa-dong.*unicast.*127\.0\.0\.1:[0-9]+.*online" "the joined speaker is online over unicast"

run 0 "play" "$LOA" play "$ASSET" --zones thon-1 "${C[@]}"
sleep 1
run 0 "status while playing" "$LOA" status "${C[@]}"
run 0 "endpoints" "$LOA" endpoints "${C[@]}"
has out "xa-dong" "endpoints lists the joined speaker"
run 0 "endpoints --zone thon-1" "$LOA" endpoints --zone thon-1 "${C[@]}"

run 0 "sdp SRTP zone --out" "$LOA" sdp "${C[@]}" --zone thon-1 --out thon-1.sdp
mode thon-1.sdp
has err "secret" "a warning that the SDP is a secret"
sed 's/^/   sdp| /' thon-1.sdp

# Receivers of the README's "Receiving a zone": loa speaker --sdp on the SRTP
# zone, ffmpeg on the "none" zone and on the mki = false zone, GStreamer's
# srtpdec on the SRTP zone, all at once while one program plays on all zones.
sleep 8  # let the first announcement end
run 0 "sdp none zone (stdout)" "$LOA" sdp "${C[@]}" --zone thon-3
cp out thon-3.sdp
run 0 "sdp mki=false zone" "$LOA" sdp "${C[@]}" --zone thon-4 --out thon-4.sdp
mode thon-4.sdp
has err "mki = false" "the mki = false zone's SDP warns about the key change"
sed 's/^/   sdp| /' thon-4.sdp
"$LOA" speaker --sdp thon-1.sdp --out thon-1.wav > sdp-speaker.out 2> sdp-speaker.err & sp=$!; pids+=($sp)
ffmpeg -nostdin -y -loglevel error -protocol_whitelist file,udp,rtp -i thon-3.sdp -t 5 ff-thon-3.wav > ff3.log 2>&1 & ff3=$!; pids+=($ff3)
ffmpeg -nostdin -y -loglevel error -protocol_whitelist file,udp,rtp,srtp -i thon-4.sdp -t 5 ff-thon-4.wav > ff4.log 2>&1 & ff4=$!; pids+=($ff4)
# The README's srtpdec snippet, word for word, recording instead of playing.
cat > gst.sh <<'GST'
SSRC=$(sed -n 's/^a=ssrc:\([0-9]*\) .*/\1/p' thon-1.sdp)
set -- $(grep '^a=crypto:' thon-1.sdp | tr -d '\r' | sed 's/^[^ ]* [^ ]* inline://; s/;inline:/ /; s/|/ /g; s/:4//g')
hex() { printf %s "$1" | base64 -d | od -An -tx1 | tr -d ' \n'; }
gst-launch-1.0 -e udpsrc address=239.255.77.1 port=5004 multicast-iface=lo caps="application/x-srtp,media=(string)audio,clock-rate=(int)48000,encoding-name=(string)OPUS,payload=(int)96,ssrc=(uint)$SSRC,srtp-key=(buffer)$(hex $1),mki=(buffer)$(printf %08x $2),srtp-key2=(buffer)$(hex $3),mki2=(buffer)$(printf %08x $4),srtp-cipher=(string)aes-128-icm,srtp-auth=(string)hmac-sha1-80,srtcp-cipher=(string)aes-128-icm,srtcp-auth=(string)hmac-sha1-80" \
  ! srtpdec ! rtpjitterbuffer ! rtpopusdepay ! opusdec ! audioconvert ! wavenc ! filesink location=gst-thon-1.wav
GST
bash gst.sh > gst.log 2>&1 & gst=$!; pids+=($gst)
sleep 2
run 0 "play on all zones" "$LOA" play "$ASSET" --zones all "${C[@]}"
sleep 10
# gst.sh's shell waits for gst-launch-1.0: the INT goes to its child.
for p in $sp $ff3 $ff4; do kill -INT $p 2>/dev/null; done; pkill -INT -P $gst
for p in $sp $ff3 $ff4 $gst; do
  for _ in $(seq 200); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
  kill -0 $p 2>/dev/null && { echo "  $p did not stop on SIGINT; killing"; kill -KILL $p; }
done
wait $sp $ff3 $ff4 $gst 2>/dev/null
sed 's/^/  speaker --sdp!| /' sdp-speaker.err; sed 's/^/  ffmpeg3!| /' ff3.log; sed 's/^/  ffmpeg4!| /' ff4.log; sed 's/^/  gst!| /' gst.log
for wav in thon-1.wav ff-thon-3.wav ff-thon-4.wav gst-thon-1.wav; do
  if [ -s $wav ] && r=$(rms $wav 2>&1); then
    echo "  $wav rms/seconds: $r"
    awk -v r="${r% *}" 'BEGIN { exit !(r > 0.01) }' || { echo "  FAIL: $wav is silent"; fails=$((fails+1)); }
  else echo "  FAIL: $wav missing or unreadable: ${r:-}"; fails=$((fails+1)); fi
done
run 0 "revoke" "$LOA" speakers revoke xa-dong "${C[@]}"
sleep 2
if kill -0 "$joined" 2>/dev/null; then echo "  FAIL: the revoked speaker still runs"; fails=$((fails+1)); kill -INT "$joined"; fi
wait "$joined"; echo "  joined speaker exited $?"; sed 's/^/  speaker!| /' joined.err
echo "  x.wav rms/seconds: $(rms x.wav)"
run 0 "list after revoking" "$LOA" speakers list "${C[@]}"
has out "xa-dong.*revoked" "the speaker shows revoked"

# The mistakes a user makes: each refused in words, with the exit code the
# README gives (1 a user error, 2 daemon unreachable).
cat > no-speakers.toml <<TOML
[network]
interface = "127.0.0.1"
[daemon]
socket = "$W/b.sock"
state_dir = "$W/b"
[[zone]]
name = "thon-1"
group = "239.255.77.1:5004"
TOML
"$LOA" serve --config no-speakers.toml > b.log 2>&1 & pids+=($!)
wait_for "$LOA" status --config no-speakers.toml || { echo "FAIL: the second daemon did not answer"; fails=$((fails+1)); }
run 1 "add: unknown zone" "$LOA" speakers add s1 --zones thon-9 "${C[@]}"
has err 'unknown zone "thon-9"; zones: thon-1, thon-3, thon-4' "the valid zones are named"
run 1 "add: a name with spaces" "$LOA" speakers add "xa dong" --zones thon-1 "${C[@]}"
has err "may only use letters" "the allowed characters are named"
run 1 "add: --out into a missing folder" "$LOA" speakers add s2 --zones thon-1 --out nowhere/s2.toml "${C[@]}"
has err "does not exist; nothing was enrolled" "nothing is enrolled"
run 1 "add: a daemon with no [speakers]" "$LOA" speakers add s1 --zones thon-1 --config no-speakers.toml
has err 'add \[speakers\] listen' "what to add to the config"
run 0 "add: the revoked name again" "$LOA" speakers add xa-dong --zones thon-1 --out xa-dong-2.toml "${C[@]}"
run 1 "add: the same name twice" "$LOA" speakers add xa-dong --zones thon-1 "${C[@]}"
has err "is already enrolled; revoke it first" "what to do"
run 1 "revoke: unknown name" "$LOA" speakers revoke nobody "${C[@]}"
has err 'no enrolled speaker is called "nobody"; see loa speakers list' "where to look"
run 1 "join: wrong credential path" "$LOA" speaker --join 127.0.0.1:5300 --credential xa-dong-typo.toml
has err "cannot read the credential xa-dong-typo.toml" "the path is named"
run 1 "join: the config given as credential" "$LOA" speaker --join 127.0.0.1:5300 --credential loa.toml
has err "it is a loa config file, not a speaker credential" "the mix-up is named"
head -c 300 xa-dong-2.toml > cut.toml
run 1 "join: a truncated credential" "$LOA" speaker --join 127.0.0.1:5300 --credential cut.toml
has err "line [0-9]+: .*loa speakers add" "where and what to give instead"
run 1 "join: the revoked credential" "$LOA" speaker --join 127.0.0.1:5300 --credential xa-dong.toml
has err "was revoked at .*; ask the operator to enrol it again" "revoked, and what to do"
run 1 "join: no port" "$LOA" speaker --join 127.0.0.1 --credential xa-dong-2.toml
has err "has no port" "HOST:PORT is asked for"
run 1 "join: nobody listens" "$LOA" speaker --join 127.0.0.1:5301 --credential xa-dong-2.toml
has err "127.0.0.1:5301" "the address tried is named"
run 2 "sdp: SRTP zone, daemon not running" "$LOA" sdp --config loa.toml --socket "$W/none.sock" --zone thon-1
has err "keys come from the running daemon" "why the daemon is needed"

echo; echo "walkthrough: $fails failed check(s); files in $W"
exit $((fails > 0))
