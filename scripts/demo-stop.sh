#!/usr/bin/env bash
# Stops the daemon `make demo` started (SIGTERM: programs stop, RTCP BYE,
# history rows closed).
set -euo pipefail
PIDFILE=/tmp/loa-demo/loa.pid
for SPEAKER in /tmp/loa-demo/speaker.pid /tmp/loa-demo/joined.pid; do
  if [ -f "$SPEAKER" ]; then
    kill -TERM "$(cat "$SPEAKER")" 2>/dev/null || true
    rm -f "$SPEAKER"
  fi
done
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [ "${1:-}" = quiet ] || echo "demo: daemon $pid stopped"
elif [ "${1:-}" != quiet ]; then
  echo "demo: no demo daemon is running"
fi
rm -f "$PIDFILE"
