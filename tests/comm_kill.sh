#!/bin/sh
# A rank killed with SIGKILL mid-run must take the whole job down: mpirun
# has to return non-zero within 30 s, with no rank left hanging.
set -u
mpirun=$1 soak=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$mpirun" --allow-run-as-root --oversubscribe -np 3 "$soak" "$dir" >"$dir/out" 2>&1 &
job=$!
# However long a loaded machine takes to start them; only mpirun's end
# (or ctest's TIMEOUT) ends the wait.
while [ ! -f "$dir/rank-1.pid" ] || [ ! -f "$dir/rank-2.pid" ]; do
  kill -0 $job 2>/dev/null || { echo "comm_kill: mpirun ended before the ranks started"; cat "$dir/out"; exit 1; }
  sleep 0.1
done
sleep 1
victim=$(cat "$dir/rank-1.pid")
start=$(date +%s%N)
kill -9 "$victim"
# Wait for mpirun, but never longer than 30 s.
i=0
while kill -0 $job 2>/dev/null; do
  i=$((i + 1))
  if [ $i -gt 300 ]; then
    echo "comm_kill: mpirun still running 30 s after rank 1 was killed"
    pkill -9 -f "$soak"; kill -9 $job; exit 1
  fi
  sleep 0.1
done
wait $job
rc=$?
end=$(date +%s%N)
elapsed_ms=$(( (end - start) / 1000000 ))
# mpirun has returned; the surviving ranks must be gone too. A rank being
# torn down may take a moment on a loaded machine: one left hanging is
# still there after 30 s.
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
for r in 0 2; do
  pid=$(cat "$dir/rank-$r.pid")
  i=0
  while alive "$pid"; do
    i=$((i + 1))
    if [ $i -gt 300 ]; then
      echo "comm_kill: rank $r (pid $pid) still alive 30 s after mpirun returned"; kill -9 "$pid"; exit 1
    fi
    sleep 0.1
  done
done
[ $rc -ne 0 ] || { echo "comm_kill: mpirun exited 0 after a rank was killed"; exit 1; }
echo "comm_kill: ok: mpirun exited $rc, ${elapsed_ms} ms after rank 1 was killed; no rank left"
