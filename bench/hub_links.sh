#!/bin/sh
# Does netns_hub (tests/multihost/netns_hub.c) give the links it is asked
# for? Two pretend hosts (tests/multihost/hosts.sh) joined by the hub:
#  - ping's round trip at each delay, against 2 x delay: 200 pings, 5 ms
#    apart, host 1 -> host 2 (the hub holds both the request and the reply);
#  - iperf3's TCP throughput (3 s, receiver's figure) at each rate with a
#    50 us delay, against the rate, and unlimited (the hub's own ceiling),
#    beside the veth links' without the hub.
# Prints the CPU, kernel and load average: timings on a shared machine are
# noisy. Root (namespaces); needs ping and iperf3 (scripts/install-deps.sh).
# usage: bench/hub_links.sh NETNS_HUB
set -eu
here=$(cd "$(dirname "$0")" && pwd)
hosts=$here/../tests/multihost/hosts.sh
export DDPT_NETNS_HUB="${1:?usage: bench/hub_links.sh NETNS_HUB}"
prefix=ddpt-mh-$$
"$hosts" reap ddpt-mh
trap '"$hosts" down "$prefix"' EXIT
trap 'exit 1' INT TERM
"$hosts" up "$prefix" 2
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) ($(nproc) cpus), kernel $(uname -r)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "ping host 1 -> host 2 (ms): delay | 2 x delay | rtt min / mean / mdev"
for delay in 0us 50us 500us 2ms; do
  "$hosts" hub "$prefix" none "$delay" >/dev/null
  rtt=$(ip netns exec "$prefix-h1" ping -q -c 200 -i 0.005 10.218.0.3 | sed -n 's/^rtt [^=]*= \([^ ]*\) ms$/\1/p')
  echo "  $delay | $(awk -v d="$delay" 'BEGIN { u = d; sub(/^[0-9.]+/, "", u)
    printf "%.3f", 2 * (d + 0) * (u == "ms" ? 1 : 1e-3) }') | $(echo "$rtt" | tr / ' ' | awk '{print $1, "/", $2, "/", $4}')"
done

echo "iperf3 host 1 -> host 2, 3 s (Mbit/s received): link | rate | throughput"
throughput() {
  ip netns exec "$prefix-h2" iperf3 -s -1 -D -B 10.218.0.3
  sleep 0.2 # the server's listening socket; a client that comes first retries below
  ip netns exec "$prefix-h1" iperf3 -c 10.218.0.3 -t 3 -f m --connect-timeout 2000 2>&1 |
    awk '/receiver/ { print $7 }'
}
for rate in 1gbit 2.5gbit none; do
  "$hosts" hub "$prefix" "$rate" 50us >/dev/null
  echo "  hub, 50us | $rate | $(throughput)"
done
"$hosts" shape "$prefix" none 0us >/dev/null
echo "  veth | none | $(throughput)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
