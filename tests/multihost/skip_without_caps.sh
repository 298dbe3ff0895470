#!/bin/sh
# Where namespaces cannot be made, the multi-host test must say so and be
# counted as skipped, never pass silently: run it in a user namespace
# (`unshare -U -r`: root there, but no CAP_NET_ADMIN or CAP_SYS_ADMIN over
# this machine's network and mounts; where user namespaces are off, as the
# unprivileged user nobody) and require exit 77 and the line.
# usage: skip_without_caps.sh DDPT MPIRUN NETNS_HUB
set -u
here=$(cd "$(dirname "$0")" && pwd)
if unshare -U -r true 2>/dev/null; then
  out=$(unshare -U -r "$here/train_hosts.sh" "$1" "$2" "$3" 2>&1)
else
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$here/train_hosts.sh" "$1" "$2" "$3" 2>&1)
fi
rc=$?
echo "$out"
[ $rc -eq 77 ] || { echo "skip_without_caps: train_hosts.sh exited $rc without the capabilities, not 77"; exit 1; }
echo "$out" | grep -q "^train_hosts: skipped: needs CAP_NET_ADMIN" ||
  { echo "skip_without_caps: no 'skipped: needs CAP_NET_ADMIN' line"; exit 1; }
echo "skip_without_caps: ok: without the capabilities the test says it is skipped (exit 77)"
