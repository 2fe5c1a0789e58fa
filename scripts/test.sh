#!/usr/bin/env bash
# `make test`: build everything with network access, then run the whole test
# suite offline inside a private network namespace (loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --no-run
scripts/netns.sh cargo test --locked --offline -- "$@"
