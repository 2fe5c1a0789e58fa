#!/usr/bin/env bash
# `make test`: hold the code to the lint set of Cargo.toml's [lints] table
# (any warning fails), build everything with network access, then run the
# whole test suite offline inside a private network namespace (loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo clippy --version >/dev/null 2>&1; then
  echo "make test needs clippy: rustup component add clippy" >&2
  exit 1
fi
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --no-run
scripts/netns.sh cargo test --locked --offline -- "$@"
