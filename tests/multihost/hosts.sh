#!/bin/sh
# Pretend machines on one machine: network namespaces joined by a bridge,
# with addresses that exist only inside them, and links shaped by tc. The
# multi-host tests (tests/multihost/*.sh) and bench/allreduce_netns.py run
# mpirun in PREFIX-head and one Open MPI daemon per PREFIX-hI "host", so
# ranks on different hosts talk over TCP across veth pairs as they would
# across machines (no shared memory between hosts).
#
#   PREFIX-head  bridge br0 10.218.0.1/24; mpirun runs here
#   PREFIX-hI    eth0 10.218.0.(I+1)/24, veth peer vhI on the head's bridge
#
# Nothing is created or changed outside these namespaces: every link is
# made inside one (ip -n), and deleting the namespaces deletes the links.
#
# usage: hosts.sh probe PREFIX          exit 0 if namespaces can be made here
#        hosts.sh up PREFIX N           make PREFIX-head and PREFIX-h1..hN
#        hosts.sh shape PREFIX RATE DELAY   shape every host's egress (e.g.
#                                       10gbit 50us; RATE "none": unshaped);
#                                       prints what it could apply
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
  echo "usage: hosts.sh probe|up|shape|down|reap|mpirun PREFIX ..." >&2
  exit 2
fi

ns_list() { ip netns list | awk '{print $1}' | grep "^$1-" || true; }

down() {
  for ns in $(ns_list "$1"); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
  done
  for ns in $(ns_list "$1"); do ip netns del "$ns" 2>/dev/null || true; done
}

up() {
  n=$1 head=$prefix-head
  ip netns add "$head"
  ip -n "$head" link set lo up
  ip -n "$head" link add br0 type bridge
  ip -n "$head" addr add "$subnet.1/24" dev br0
  ip -n "$head" link set br0 up
  i=1
  while [ "$i" -le "$n" ]; do
    host=$prefix-h$i
    ip netns add "$host"
    ip -n "$host" link set lo up
    ip -n "$head" link add "vh$i" type veth peer name eth0 netns "$host"
    ip -n "$head" link set "vh$i" master br0 up
    ip -n "$host" addr add "$subnet.$((i + 1))/24" dev eth0
    ip -n "$host" link set eth0 up
    i=$((i + 1))
  done
}

# tbf's bucket must hold what the rate sends in a millisecond (and at least
# a 64 KiB GSO packet), or it throttles below the rate it was given.
tbf_burst() {
  awk -v r="$1" 'BEGIN { n = r + 0; u = r; sub(/^[0-9.]+/, "", u)
    m = (u == "gbit") ? 1e9 : (u == "mbit") ? 1e6 : (u == "kbit") ? 1e3 : 1
    b = n * m / 8 / 1000; if (b < 131072) b = 131072; printf "%d", b }'
}

# netem gives rate and delay; kernels built without it (CONFIG_NET_SCH_NETEM
# unset, as on the development VM) still have tbf, which gives the rate only.
shape() {
  rate=$1 delay=$2 applied=
  for host in $(ns_list "$prefix" | grep -- "-h[0-9]*$"); do
    tc -n "$host" qdisc del dev eth0 root 2>/dev/null || true
    [ "$rate" = none ] && { applied="unshaped"; continue; }
    if tc -n "$host" qdisc add dev eth0 root netem rate "$rate" delay "$delay" limit 100000 2>/dev/null; then
      applied="netem rate $rate delay $delay"
    else
      tc -n "$host" qdisc add dev eth0 root tbf rate "$rate" burst "$(tbf_burst "$rate")" latency 100ms
      applied="tbf rate $rate, no added delay (no netem in this kernel)"
    fi
  done
  echo "$applied"
}

case $cmd in
  probe)
    ip netns add "$prefix-probe" 2>/dev/null || exit 1
    ip netns del "$prefix-probe"
    ;;
  up) up "${3:?hosts.sh up PREFIX N}" ;;
  shape) shape "${3:?hosts.sh shape PREFIX RATE DELAY}" "${4:-0us}" ;;
  down) down "$prefix" ;;
  reap)
    for p in $(ip netns list | awk '{print $1}' | sed -n "s/^\($prefix-[0-9]*\)-.*/\1/p" | sort -u); do
      kill -0 "${p##*-}" 2>/dev/null || down "$p"
    done
    ;;
  mpirun)
    shift 2
    exec ip netns exec "$prefix-head" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
      mpirun --mca plm_rsh_agent "$here/ns_agent.sh" --mca btl tcp,self \
      --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24" "$@"
    ;;
  *) echo "hosts.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
