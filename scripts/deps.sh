#!/usr/bin/env bash
# Installs what `make demo` / `make test` need and this machine lacks, so a
# fresh Debian box needs nothing but `make`. Idempotent: does nothing (and
# touches no network) when everything is present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cmake       || need+=(cmake)            # libopus is built from source by opusic-sys
have pkg-config  || need+=(pkg-config)
have ffmpeg      || need+=(ffmpeg)           # interop receiver and test fixtures
have gst-launch-1.0 || need+=(gstreamer1.0-tools)
have tshark      || need+=(tshark)           # packet captures in tests and pacing measurements
have nft         || need+=(nftables)         # NAT namespaces in the speaker-session tests (masquerade)
have conntrack   || need+=(conntrack)        # flushing NAT mappings mid-stream (rebinding test)
have ip          || need+=(iproute2)         # private network namespace for tests
have unshare     || need+=(util-linux)
have espeak-ng   || need+=(espeak-ng)        # `loa say` (voices vi, vi-vn-x-central, vi-vn-x-south) and the demo asset
have faketime    || need+=(faketime)         # libfaketime: wall-clock jumps in tests/faults_clock.rs
pkg-config --exists alsa 2>/dev/null || need+=(libasound2-dev)  # ALSA headers for `loa live` capture (alsa-sys)
pkg-config --exists libsrtp2 2>/dev/null || need+=(libsrtp2-dev)  # SRTP (src/rtp/srtp links libsrtp2; a test reads its header)
# GStreamer elements the interop tests use, by the package that ships them.
if have gst-inspect-1.0; then
  gst-inspect-1.0 udpsrc    >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-good)
  gst-inspect-1.0 rtpopusdepay >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-good)
  gst-inspect-1.0 opusdec   >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-base)
  gst-inspect-1.0 wavenc    >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-good)
  gst-inspect-1.0 opusparse >/dev/null 2>&1 || need+=(gstreamer1.0-plugins-bad)
else
  need+=(gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi

if ! have cargo; then
  echo "deps: cargo is not installed; install Rust (https://rustup.rs) first" >&2
  exit 1
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# Deduplicate while keeping order.
mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
echo "deps: installing ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
