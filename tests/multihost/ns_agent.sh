#!/bin/sh
# Open MPI's rsh launcher agent (--mca plm_rsh_agent) for tests/multihost:
# called as ssh would be, `ns_agent.sh HOST COMMAND...`, it runs COMMAND (an
# Open MPI daemon) in the network namespace named HOST, in a UTS namespace
# of its own whose hostname is HOST, so that the daemon, its ranks and
# their messages name the "host" they are on.
set -eu
host=$1
shift
# shellcheck disable=SC2016 # expanded by the inner shell, not this one
exec ip netns exec "$host" unshare --uts /bin/sh -c 'hostname "$0" && exec /bin/sh -c "$1"' "$host" "$*"
