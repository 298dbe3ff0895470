#!/bin/sh
# A rank killed with SIGKILL mid-run must take the whole job down: mpirun
# has to return non-zero within 30 s, with no rank left hanging.
set -u
mpirun=$1 soak=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$mpirun" --allow-run-as-root --oversubscribe -np 3 "$soak" "$dir" >"$dir/out" 2>&1 &
job=$!
i=0
while [ ! -f "$dir/rank-1.pid" ] || [ ! -f "$dir/rank-2.pid" ]; do
  i=$((i + 1))
  [ $i -gt 300 ] && { echo "comm_kill: ranks did not start"; cat "$dir/out"; kill -9 $job; exit 1; }
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
# mpirun has returned; the surviving ranks must be gone too (a second of
# grace for the kernel to finish tearing them down).
sleep 1
for r in 0 2; do
  pid=$(cat "$dir/rank-$r.pid")
  if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    echo "comm_kill: rank $r (pid $pid) still alive after mpirun returned"; kill -9 "$pid"; exit 1
  fi
done
[ $rc -ne 0 ] || { echo "comm_kill: mpirun exited 0 after a rank was killed"; exit 1; }
echo "comm_kill: ok: mpirun exited $rc, ${elapsed_ms} ms after rank 1 was killed; no rank left"
