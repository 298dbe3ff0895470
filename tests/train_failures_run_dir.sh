#!/bin/sh
# ddpt train against a hostile run directory and a stalled rank (issue 16):
#  1. two runs into one --run-dir: the second fails at once naming the pid
#     and host of the first, which goes on; SIGTERM to mpirun then stops
#     the first cleanly and RUN_DIR/STATUS says "stopped"; the LOCK it
#     leaves is stale and a --resume takes it over.
#  2. checkpoints onto a full file system (a 3 MB tmpfs): the failed
#     background write stops the run with one "No space left" line long
#     before the next checkpoint would have noticed, no crash at exit, no
#     temporary file; on 16 MB two checkpoints fit, the third fails the
#     same way, LATEST keeps the second, and a resume there fails cleanly.
#  3. a second SIGTERM while a checkpoint is being written (held there by
#     DDPT_TEST_CKPT_HOLD) ends the process at once and leaves no
#     temporary file.
#  4. the hang watchdog: rank 1 of 2 stopped with SIGSTOP; the job ends
#     within a minute with rank 0's line naming the step, the operation and
#     rank 1 ([train] watchdog_s = 3).
#  5. a --run-dir whose parents do not exist yet: made, as mkdir -p would.
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
mnt=""
cleanup() {
  [ -z "$mnt" ] || umount "$mnt" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
mpi() { timeout 120 "$mpirun" --allow-run-as-root --oversubscribe "$@"; }
need_root "(it mounts small tmpfs file systems)"
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"
common="--threads 1 --set data.corpus=$dir/corpus --set train.batch_size=4 --set log.every=1 --set log.eval_every=0"
# The pid of rank RANK of the mpirun job whose command line matches PATTERN.
rank_pid() { # pattern rank
  for p in $(pgrep -f "$1"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}
one_line() { # file pattern what
  n=$(grep -c "^ddpt train:" "$1" || true)
  [ "$n" = 1 ] || { cat "$1"; fail "$3: $n 'ddpt train:' lines, want 1"; }
  grep "^ddpt train:" "$1" | grep -q "$2" || { cat "$1"; fail "$3: the line does not say '$2'"; }
}
no_temp() { # run-dir what
  ! ls -a "$1" | grep -q '\.tmp-' || fail "$2: a temporary file is left: $(ls -a "$1")"
}

# 1. the lock
# shellcheck disable=SC2086
mpi -np 2 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/locked" $common --set train.steps=1000000 \
  --set checkpoint.every=0 >"$dir/first.out" 2>&1 &
job=$!
wait_for $job "$dir/first.out" "the first run did not start" logged_step "$dir/locked/metrics.jsonl" 2
holder=$(rank_pid "$dir/locked" 0)
rc=0
# shellcheck disable=SC2086
"$ddpt" train "$dir/tiny.ini" --run-dir "$dir/locked" $common --set train.steps=5 >"$dir/second.out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$dir/second.out"; fail "a second run into a locked run directory: exit $rc, want 1"; }
one_line "$dir/second.out" "in use by another ddpt run (pid $holder on host $(hostname)" "a second run"
kill -0 $job || fail "the first run died when the second one tried its run directory"
grep -q "^running pid $holder" "$dir/locked/STATUS" || fail "STATUS while running: $(cat "$dir/locked/STATUS")"
pkill -USR1 -f "^$mpirun.*$dir/locked" || kill -USR1 $job
rc=0; wait $job || rc=$?
grep -q "stopped on request after step" "$dir/first.out" || { cat "$dir/first.out"; fail "no clean stop"; }
grep -q "^stopped step=[0-9]*$" "$dir/locked/STATUS" || fail "STATUS after SIGTERM: $(cat "$dir/locked/STATUS")"
echo "train_failures_run_dir: mpirun exits $rc on SIGTERM; STATUS: $(cat "$dir/locked/STATUS")"
grep -q "^$holder " "$dir/locked/LOCK" || fail "LOCK does not name the first run's rank 0"
stopped=$(sed 's/^stopped step=//' "$dir/locked/STATUS")
"$ddpt" train --resume "$dir/locked" --threads 1 --set train.steps=$((stopped + 1)) >"$dir/stale.out" 2>&1 ||
  { cat "$dir/stale.out"; fail "resuming behind a stale LOCK failed"; }
[ "$(cat "$dir/locked/STATUS")" = "done step=$((stopped + 1))" ] || fail "STATUS at the end: $(cat "$dir/locked/STATUS")"
echo "train_failures_run_dir: a second run is refused naming pid $holder; a stale LOCK is taken over"

# 2. a full file system
mnt="$dir/full"
mkdir -p "$mnt"
mount -t tmpfs -o size=3m tmpfs "$mnt" || fail "cannot mount a tmpfs (the test needs root)"
rc=0
# shellcheck disable=SC2086
"$ddpt" train "$dir/tiny.ini" --run-dir "$mnt/run" $common --set train.steps=400 --set checkpoint.every=200 \
  --set checkpoint.keep=0 --set train.watchdog_s=0 >"$dir/full.out" 2>&1 || rc=$?
# shellcheck disable=SC2016
[ $rc = 1 ] || { cat "$dir/full.out"; fail "checkpoint onto a full disk: exit $rc, want 1 (139: a crash)"; }
one_line "$dir/full.out" "checkpoint of step 200 not written.*No space left on device" "full disk"
last=$("$py" -c 'import json,sys; print(max(json.loads(l)["step"] for l in open(sys.argv[1])))' "$mnt/run/metrics.jsonl")
[ "$last" -lt 300 ] || fail "the failed write of checkpoint 200 was noticed only at step $last"
no_temp "$mnt/run" "full disk"
umount "$mnt"
mount -t tmpfs -o size=16m tmpfs "$mnt" || fail "cannot mount a tmpfs"
rc=0
# shellcheck disable=SC2086
"$ddpt" train "$dir/tiny.ini" --run-dir "$mnt/run" $common --set train.steps=10 --set checkpoint.every=1 \
  --set checkpoint.keep=0 >"$dir/full16.out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$dir/full16.out"; fail "checkpoints filling 16 MB: exit $rc, want 1"; }
one_line "$dir/full16.out" "checkpoint of step 3 not written.*No space left on device" "16 MB"
[ "$(cat "$mnt/run/LATEST")" = ckpt-00000002.h5 ] || fail "LATEST is $(cat "$mnt/run/LATEST"), want checkpoint 2"
"$ddpt" ckpt verify "$mnt/run/ckpt-00000002.h5" >/dev/null || fail "checkpoint 2 does not verify after the full disk"
rc=0
"$ddpt" train --resume "$mnt/run" --threads 1 >"$dir/resume16.out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$dir/resume16.out"; fail "a resume on the full disk: exit $rc, want 1"; }
one_line "$dir/resume16.out" "checkpoint of step 3 not written.*No space left on device" "resume on a full disk"
no_temp "$mnt/run" "resume on a full disk"
umount "$mnt"
mnt=""
echo "train_failures_run_dir: a full disk stops the run at step $last with one line; LATEST intact, no crash"

# 3. a second SIGTERM during a checkpoint write
# shellcheck disable=SC2086
DDPT_TEST_CKPT_HOLD="3:$dir/held" "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/twice" $common \
  --set train.steps=1000 --set checkpoint.every=1 >"$dir/twice.out" 2>&1 &
job=$!
wait_for $job "$dir/twice.out" "checkpoint 3 was not held" test -e "$dir/held"
kill -TERM $job
sleep 0.2 # two signals sent at once merge into one delivery
kill -TERM $job
rc=0; wait $job || rc=$?
[ $rc = 143 ] || { cat "$dir/twice.out"; fail "two SIGTERMs during a write: exit $rc, want 143"; }
no_temp "$dir/twice" "a second SIGTERM during a write"
[ "$(cat "$dir/twice/LATEST")" = ckpt-00000002.h5 ] || fail "LATEST is $(cat "$dir/twice/LATEST")"
echo "train_failures_run_dir: a second SIGTERM inside a checkpoint write leaves no temporary file"

# 4. the watchdog
# shellcheck disable=SC2086
mpi -np 2 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/stall" $common --set train.steps=1000000 \
  --set checkpoint.every=0 --set train.watchdog_s=3 >"$dir/stall.out" 2>&1 &
job=$!
wait_for $job "$dir/stall.out" "the watchdog run did not start" logged_step "$dir/stall/metrics.jsonl" 3
victim=$(rank_pid "$dir/stall" 1)
[ -n "$victim" ] || fail "rank 1 of the watchdog run not found"
kill -STOP "$victim"
start=$(date +%s)
rc=0; wait $job || rc=$?
took=$(($(date +%s) - start))
kill -9 "$victim" 2>/dev/null || true
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$dir/stall.out"; fail "a stalled rank: exit $rc"; }
[ $took -lt 60 ] || fail "the stalled job took $took s to end"
grep "^ddpt train: rank 0: watchdog: step [0-9]*, .* waiting for rank 1 (silent for [0-9]* s, last seen at collective [0-9]*, step [0-9]*)" "$dir/stall.out" ||
  { cat "$dir/stall.out"; fail "no watchdog line naming the step, the operation and rank 1"; }
echo "train_failures_run_dir: rank 1 stopped: the watchdog ended the job in $took s"

# 5. missing parents
# shellcheck disable=SC2086
"$ddpt" train "$dir/tiny.ini" --run-dir "$dir/runs/a/b" $common --set train.steps=2 >"$dir/nested.out" 2>&1 ||
  { cat "$dir/nested.out"; fail "a --run-dir with missing parents failed"; }
[ "$(cat "$dir/runs/a/b/STATUS" 2>/dev/null)" = "done step=2" ] || fail "the nested run's STATUS is not 'done step=2'"
echo "train_failures_run_dir: a --run-dir with missing parents is made"
echo "train_failures_run_dir: ok"
