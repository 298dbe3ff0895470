# shellcheck shell=sh disable=SC2034,SC2154 # variables set for, and by, the scripts that source this
# Sourced by the end-to-end test scripts, after `set -eu` and after setting
# mpirun where they call mpi: $py, $lib (this folder), a temporary $dir
# removed on exit, fail (prints "<script>: message", exits 1), need_root,
# mpi (mpirun as root, oversubscribed: the tests run more ranks than
# cores), wait_for (a background job reaches a point) and wait_ended (a
# killed job must end in time).
# usage: . "$(dirname "$0")/lib/e2e.sh"
py=/usr/bin/python3
lib=$(dirname "$0")/lib
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "$(basename "$0" .sh): $*"; exit 1; }
# Skips the test (ctest's SKIP_RETURN_CODE 77) unless it runs as root.
need_root() { [ "$(id -u)" = 0 ] || { echo "$(basename "$0" .sh): skipped: needs root $*"; exit 77; }; }
mpi() { "$mpirun" --allow-run-as-root --oversubscribe "$@"; }
# Waits until COMMAND succeeds while background job PID runs; if the job
# ends first, prints OUTPUT (the job's output file) and fails with MESSAGE.
# No clock: however slow a loaded machine is, only the job's end (or
# ctest's TIMEOUT) ends the wait.
wait_for() { # pid output message command...
  _pid=$1 _out=$2 _msg=$3; shift 3
  until "$@"; do
    kill -0 "$_pid" 2>/dev/null || "$@" || { cat "$_out"; fail "$_msg (the job ended)"; }
    sleep 0.1
  done
}
# True once metrics.jsonl FILE logs step STEP.
logged_step() { grep -q "\"step\":$2," "$1" 2>/dev/null; } # file step
# Waits for background job PID to end, at most SECONDS, failing with
# MESSAGE if it does not; then sets rc to its exit status.
wait_ended() { # pid seconds message
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt $(($2 * 10)) ] && fail "$3"; sleep 0.1
  done
  rc=0; wait "$1" || rc=$?
}
