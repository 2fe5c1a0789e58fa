#!/usr/bin/env bash
# Runs a command inside a private network namespace whose only interface is
# loopback, with multicast enabled and routed to lo. Nothing run this way can
# reach a real network (the project's network rule). It also gets a private
# mount namespace, so tests may mount a tiny or read-only tmpfs (a full or
# read-only state_dir) without the host seeing it.
#
#   scripts/netns.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${LOA_IN_NETNS:-}" = 1 ]; then
  exec "$@"
fi
inner='ip link set lo up multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"'
export LOA_IN_NETNS=1
if [ "$(id -u)" -eq 0 ]; then
  exec unshare --net --mount --propagation private -- bash -c "$inner" netns "$@"
else
  # Unprivileged: a user namespace maps us to root inside it.
  exec unshare --map-root-user --net --mount --propagation private -- bash -c "$inner" netns "$@"
fi
