#!/usr/bin/env bash
# The carrier-NAT rig of the speaker-session tests (tests/common/nat.rs), by
# hand: loa's host 203.0.113.10, a NAT box (public 203.0.113.1, private
# 100.64.0.1; random-port masquerade, short UDP conntrack timeouts, nothing
# unsolicited in) and a speaker 100.64.0.2 behind it. Namespaces joined only
# by veths; run it inside scripts/netns.sh so nothing can reach a real
# network. Runs COMMAND (default: a shell) with the rig up, then tears it
# down whatever happens.
#
#   scripts/netns.sh scripts/nat-rig.sh [COMMAND...]
#
# Inside:  ip netns exec $NAT_LOA loa serve --config …
#          ip netns exec $NAT_SPEAKER loa speaker --join 203.0.113.10:5300 …
#          ip netns exec $NAT_BOX conntrack -F          (rebinding)
#          ip netns exec $NAT_BOX conntrack -L -p udp   (the mappings)
# Timeouts: NAT_UDP_TIMEOUT (default 5 s), NAT_UDP_STREAM_TIMEOUT (10 s).
set -euo pipefail
if [ "${LOA_IN_NETNS:-}" != 1 ]; then
  echo "nat-rig.sh: run it inside the private namespace: scripts/netns.sh $0 $*" >&2
  exit 1
fi
for tool in ip nft conntrack sysctl; do
  command -v "$tool" >/dev/null || { echo "nat-rig.sh: $tool is missing; run scripts/deps.sh" >&2; exit 1; }
done

tag="natsh$$"
export NAT_LOA="$tag-loa" NAT_BOX="$tag-nat" NAT_SPEAKER="$tag-spk"
lan="$tag-lan"
made=()
cleanup() { for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done; }
trap cleanup EXIT

for ns in "$NAT_LOA" "$NAT_BOX" "$NAT_SPEAKER" "$lan"; do
  ip netns add "$ns"; made+=("$ns")
  ip -n "$ns" link set lo up
done
ip -n "$lan" link add br0 type bridge mcast_snooping 0
ip -n "$lan" link set br0 up
veth() { # NS_A IF_A NS_B IF_B
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  ip -n "$1" link set "$2" up; ip -n "$3" link set "$4" up
}
veth "$NAT_LOA" eth0 "$lan" p0; ip -n "$lan" link set p0 master br0
veth "$NAT_BOX" pub "$lan" p1;  ip -n "$lan" link set p1 master br0
veth "$NAT_SPEAKER" eth0 "$NAT_BOX" priv
ip -n "$NAT_LOA" addr add 203.0.113.10/24 dev eth0
ip -n "$NAT_BOX" addr add 203.0.113.1/24 dev pub
ip -n "$NAT_BOX" addr add 100.64.0.1/10 dev priv
ip -n "$NAT_SPEAKER" addr add 100.64.0.2/10 dev eth0
ip -n "$NAT_SPEAKER" route add default via 100.64.0.1
ip -n "$NAT_LOA" link set lo multicast on
ip -n "$NAT_LOA" route add 224.0.0.0/4 dev lo

ip netns exec "$NAT_BOX" sysctl -q -w net.ipv4.ip_forward=1
ip netns exec "$NAT_BOX" sysctl -q -w "net.netfilter.nf_conntrack_udp_timeout=${NAT_UDP_TIMEOUT:-5}" \
  "net.netfilter.nf_conntrack_udp_timeout_stream=${NAT_UDP_STREAM_TIMEOUT:-10}" ||
  { echo "nat-rig.sh: no conntrack sysctls: load nf_conntrack (modprobe nf_conntrack)" >&2; exit 1; }
ip netns exec "$NAT_BOX" nft -f - <<'EOF'
table ip loa_nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "pub" masquerade random,fully-random
  }
}
table inet loa_carrier {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ct state established,related accept
    iifname "pub" drop
  }
}
EOF
echo "nat-rig.sh: up: NAT_LOA=$NAT_LOA NAT_BOX=$NAT_BOX NAT_SPEAKER=$NAT_SPEAKER" >&2
if [ $# -eq 0 ]; then set -- bash; fi
"$@"
