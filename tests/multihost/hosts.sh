#!/bin/sh
# Pretend machines on one machine: network namespaces joined by a switch,
# with addresses that exist only inside them, and links shaped to a rate
# and a delay. The multi-host tests (tests/multihost/*.sh) and
# bench/allreduce_netns.py run mpirun in PREFIX-head and one Open MPI daemon
# per PREFIX-hI "host", so ranks on different hosts talk over TCP across
# their links as they would across machines (no shared memory between hosts).
#
# Two kinds of links, both ending in eth0 in each host, 10.218.0.(I+1)/24:
#   veth    a veth pair per host (vhI on bridge br0 in PREFIX-head, which
#           has 10.218.0.1); tc tbf on each eth0 for a rate. No delay:
#           this kernel has no netem (CONFIG_NET_SCH_NETEM unset).
#   hub     netns_hub (tests/multihost/netns_hub.c), a userspace switch in
#           PREFIX-head with a TAP per host (eth0) and one for the head
#           (hub0, 10.218.0.1), MTU 65521: every frame held for the delay,
#           each host's sending limited to the rate. Path in DDPT_NETNS_HUB;
#           its statistics go to DDPT_HUB_LOG (default /dev/null) when it
#           stops (at the next shape or hub).
#
# Nothing is created or changed outside these namespaces: every link is
# made inside one (ip -n, or the hub entering it), and deleting the
# namespaces (and the hub, which runs in PREFIX-head) deletes the links.
#
# usage: hosts.sh probe PREFIX          exit 0 if namespaces can be made here
#        hosts.sh up PREFIX N           make PREFIX-head and PREFIX-h1..hN
#                                       joined by veth links, unshaped
#        hosts.sh shape PREFIX RATE DELAY   every host's link to RATE (e.g.
#                                       10gbit; "none": unlimited) and DELAY
#                                       (e.g. 50us): veth and tbf for a delay
#                                       of 0, the hub otherwise; prints what
#                                       it applied
#        hosts.sh hub PREFIX RATE DELAY the hub whatever the delay (its own
#                                       cost at delay 0, for the bench)
#        hosts.sh down PREFIX           kill what runs inside, delete them
#        hosts.sh reap STEM             "down" every STEM-PID whose PID is
#                                       gone (leftovers of a killed run)
#        hosts.sh mpirun PREFIX ARGS... mpirun in PREFIX-head over TCP on
#                                       the hosts' subnet
# The hostfile names the hosts PREFIX-hI; ns_agent.sh (plm_rsh_agent) starts
# each daemon in the namespace of that name, with that name as hostname.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
subnet=10.218.0
cmd=${1:-} prefix=${2:-}
if [ -z "$cmd" ] || [ -z "$prefix" ]; then
  echo "usage: hosts.sh probe|up|shape|hub|down|reap|mpirun PREFIX ..." >&2
  exit 2
fi

ns_list() { ip netns list | awk '{print $1}' | grep "^$1-" || true; }
host_list() { ns_list "$prefix" | sed -n 's/.*-h\([0-9]*\)$/\1/p' | sort -n | sed "s/^/$prefix-h/"; }
head=$prefix-head
hub_mtu=65521 # the most a TAP takes: 64 KiB frames keep the hub's frame rate low

down() {
  for ns in $(ns_list "$1"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  done
  for ns in $(ns_list "$1"); do ip netns del "$ns" 2>/dev/null || true; done
}

up() {
  n=$1
  ip netns add "$head"
  ip -n "$head" link set lo up
  i=1
  while [ "$i" -le "$n" ]; do
    ip netns add "$prefix-h$i"
    ip -n "$prefix-h$i" link set lo up
    i=$((i + 1))
  done
  links_veth
}

# Sets dev's address (the head's, or host I's) and brings it up.
address() { # netns dev I mtu
  ip -n "$1" link set "$2" mtu "$4"
  ip -n "$1" addr add "$subnet.$(($3 + 1))/24" dev "$2"
  ip -n "$1" link set "$2" up
}

links_veth() {
  ip -n "$head" link add br0 type bridge
  address "$head" br0 0 1500
  for host in $(host_list); do
    i=${host##*-h}
    ip -n "$head" link add "vh$i" type veth peer name eth0 netns "$host"
    ip -n "$head" link set "vh$i" master br0 up
    address "$host" eth0 "$i" 1500
  done
}

hub_pids() {
  for pid in $(ip netns pids "$head" 2>/dev/null); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = netns_hub ] && echo "$pid"
  done
  true
}

# SIGTERM, so that the hub writes its statistics, then wait for it to go
# (its TAPs go with it); SIGKILL after 5 s, give up after 10.
stop_hub() {
  pids=$(hub_pids) i=0
  [ -z "$pids" ] && return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  # A process leaves its namespace before its files close: wait for the TAPs.
  while [ -n "$(hub_pids)" ] || ip -n "$head" link show hub0 >/dev/null 2>&1; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    [ $i -gt 100 ] && { kill -9 $pids 2>/dev/null || true; }
    [ $i -gt 200 ] && { echo "hosts.sh: netns_hub in $head did not stop, or $head still has hub0" >&2; exit 1; }
    sleep 0.05
  done
}

links_clear() {
  stop_hub
  ip -n "$head" link del br0 2>/dev/null || true
  for host in $(host_list); do
    ip -n "$head" link del "vh${host##*-h}" 2>/dev/null || true
  done
}

links_hub() { # rate delay
  ports="$head/hub0"
  for host in $(host_list); do ports="$ports $host/eth0"; done
  # shellcheck disable=SC2086
  ip netns exec "$head" "$hub" --rate "$1" --delay "$2" --log "${DDPT_HUB_LOG:-/dev/null}" $ports
  address "$head" hub0 0 $hub_mtu
  for host in $(host_list); do address "$host" eth0 "${host##*-h}" $hub_mtu; done
}

# tbf's bucket must hold what the rate sends in a millisecond (and at least
# a 64 KiB GSO packet), or it throttles below the rate it was given.
tbf_burst() {
  awk -v r="$1" 'BEGIN { n = r + 0; u = r; sub(/^[0-9.]+/, "", u)
    m = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : 1
    b = n * m / 8 / 1000; if (b < 131072) b = 131072; printf "%d", b }'
}

shape() { # rate delay via: veth links and tbf for no delay, the hub for any
  rate=$1 delay=$2 via=$3 hub=${DDPT_NETNS_HUB:-}
  awk -v d="$delay" 'BEGIN { exit !(d + 0 == 0) }' || via=hub
  [ "$via" != hub ] || [ -x "$hub" ] || { echo "hosts.sh: a delayed link needs the hub: set DDPT_NETNS_HUB to" \
    "the built netns_hub (cmake --build build --target netns_hub), not '$hub'" >&2; exit 2; }
  links_clear
  if [ "$via" = hub ]; then
    links_hub "$rate" "$delay"
    echo "hub: rate $rate, delay $delay (netns_hub, TAP MTU $hub_mtu)"
    return
  fi
  links_veth
  [ "$rate" = none ] && { echo "veth, unshaped"; return; }
  for host in $(host_list); do
    tc -n "$host" qdisc add dev eth0 root tbf rate "$rate" burst "$(tbf_burst "$rate")" latency 100ms
  done
  echo "veth, tbf rate $rate, no delay"
}

case $cmd in
  probe)
    ip netns add "$prefix-probe" 2>/dev/null || exit 1
    ip netns del "$prefix-probe"
    ;;
  up) up "${3:?hosts.sh up PREFIX N}" ;;
  shape) shape "${3:?hosts.sh shape PREFIX RATE DELAY}" "${4:-0us}" auto ;;
  hub) shape "${3:?hosts.sh hub PREFIX RATE DELAY}" "${4:-0us}" hub ;;
  down) down "$prefix" ;;
  reap)
    for p in $(ip netns list | awk '{print $1}' | sed -n "s/^\($prefix-[0-9]*\)-.*/\1/p" | sort -u); do
      kill -0 "${p##*-}" 2>/dev/null || down "$p"
    done
    ;;
  mpirun)
    shift 2
    # Each daemon sees the whole machine as its host and would bind its
    # first rank to core 0: every host's rank on one core, each message
    # waiting for the other ranks' time slices (4 KiB took 0.3-3 ms, not
    # 50 us). The pretend hosts share the cores, so bind nothing.
    exec ip netns exec "$prefix-head" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      mpirun --mca plm_rsh_agent "$here/ns_agent.sh" --bind-to none --mca btl tcp,self \
      --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24" "$@"
    ;;
  *) echo "hosts.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
