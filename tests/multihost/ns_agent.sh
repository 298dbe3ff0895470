#!/bin/sh
# Open MPI's rsh launcher agent (--mca plm_rsh_agent) for tests/multihost:
# called as ssh would be, `ns_agent.sh HOST COMMAND...`, it runs COMMAND (an
# Open MPI daemon) in the network namespace named HOST, in a UTS namespace
# of its own whose hostname is HOST, so that the daemon, its ranks and
# their messages name the "host" they are on.
#
# Like ssh, the agent itself stays on mpirun's side (the head namespace),
# so a "host" killed whole (every process in its namespace) leaves it
# behind: ssh to a machine that died does not return either. It waits
# until mpirun, which notices the lost daemon through its own connection,
# ends it; were it to exit, mpirun would blame the launch ("unable to
# reliably start one or more daemons") instead of the lost host.
set -eu
host=$1
shift
# shellcheck disable=SC2016 # expanded by the inner shell, not this one
ip netns exec "$host" unshare --uts /bin/sh -c 'hostname "$0" && exec /bin/sh -c "$1"' "$host" "$*" &
daemon=$!
rc=0
wait "$daemon" || rc=$?
[ "$rc" -eq 137 ] && exec sleep 60 # SIGKILL: the host is gone, as far as ssh could tell
exit "$rc"
