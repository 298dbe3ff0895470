#!/bin/sh
# Exact resume, through `mpirun ddpt train`:
#  1. 40 steps straight = 20 steps, --resume, 20 more (2 ranks, dropout on):
#     h5diff finds no difference in /params and /optim, and metrics.jsonl
#     lines for steps 21-40 are equal (but for the timing fields).
#  2. 2 ranks for half an epoch, then resumed on 1 and on 3 ranks to the end
#     of the epoch: the sample logs show every sample read exactly once.
#  3. SIGUSR1 to mpirun mid-run (the stop mpirun passes on and waits for):
#     a checkpoint at the current step, exit 3, and the run resumed from it
#     ends bit-identical to the straight run.
#  4. A truncated and a bit-flipped checkpoint: verify fails naming the
#     dataset, resume falls back to the previous checkpoint naming both.
#  5. kill -9 inside a checkpoint write (held there by a test hook): LATEST
#     names the previous checkpoint, which verifies, and resuming from it is
#     bit-identical to a straight run.
#  6. A resume whose config changes the model is refused, naming the change
#     and only it (it once printed nsp=1 on both sides of an nsp=0 run);
#     a second SIGINT ends a run at once.
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
printf '[model]\npreset = bert-tiny\n[schedule]\nkind = constant\nwarmup_steps = 5\n' >"$dir/tiny.ini"
common="--threads 1 --set data.corpus=$dir/corpus --set log.every=1 --set log.eval_every=0 --set log.samples=true"
# shellcheck source=lib/train_runs.sh
. "$(dirname "$0")/lib/train_runs.sh"

# 1. straight vs stopped and resumed
train "$dir/straight" 2 6 --set train.steps=40 --set checkpoint.every=20
train "$dir/split" 2 6 --set train.steps=20 --set checkpoint.every=20
resume "$dir/split" 2 6 --set train.steps=40
same_state "$dir/straight/ckpt-00000040.h5" "$dir/split/ckpt-00000040.h5" ||
  fail "20 + resume + 20 steps differ from 40 straight"
grep -q "train.*steps changed from 20 to 40" "$dir/split.out" || fail "the changed step count is not logged"
"$py" - "$dir/straight/metrics.jsonl" "$dir/split/metrics.jsonl" <<'PY' || fail "metrics differ after resume"
import json, sys
# Fields that measure time end in "_s" or "_frac" (trainer/metrics.h); all others are deterministic.
def rows(p):
    return {r["step"]: {k: v for k, v in r.items() if not k.endswith(("_s", "_frac"))} for r in map(json.loads, open(p))}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert sorted(b) == list(range(1, 41)), sorted(b)
assert all(a[s] == b[s] for s in range(21, 41)), "lines for steps 21-40 differ"
PY
echo "train_resume: 40 straight == 20 + resume + 20 (params, optim, metrics 21-40)"

# 2. half an epoch on 2 ranks, the rest on 1 and on 3 ranks
train "$dir/half" 2 6 --set train.steps=20 --set checkpoint.every=20
cp -r "$dir/half" "$dir/on1"
cp -r "$dir/half" "$dir/on3"
resume "$dir/on1" 1 12 --set train.steps=40
resume "$dir/on3" 3 4 --set train.steps=40
for run in on1 on3; do
  "$py" - "$dir/$run/samples" <<'PY' || fail "$run: samples not read exactly once"
import collections, glob, sys
seen = collections.Counter()
for path in glob.glob(sys.argv[1] + "/rank-*.txt"):
    for line in open(path):
        for item in line.split(":", 1)[1].split():
            seen[item] += 1
want = {f"{s}:{i}@0" for s in range(12) for i in range(40)}
assert set(seen) == want, f"{len(set(seen) - want)} unexpected, {len(want - set(seen))} missing"
assert max(seen.values()) == 1, "a sample was read twice"
PY
done
echo "train_resume: half an epoch on 2 ranks + the rest on 1 or 3 ranks: all 480 samples exactly once"

# 3. A stop mid-run, then resume: bit-identical to a straight run to 20
# steps past the stop. The stopped run has no end of its own (the constant
# schedule does not depend on train.steps), so however late a loaded
# machine delivers the signal, it lands mid-run. The stop is SIGUSR1 to
# mpirun, which forwards it and waits (on SIGTERM it would abort the job).
mpi -np 2 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/term" $common --set train.batch_size=6 \
  --set train.steps=1000000 --set checkpoint.every=0 >"$dir/term.out" 2>&1 &
job=$!
wait_for $job "$dir/term.out" "the stopped run did not reach step 8" logged_step "$dir/term/metrics.jsonl" 8
pkill -USR1 -f "^$mpirun.*$dir/term" || kill -USR1 $job
rc=0; wait $job || rc=$?
[ $rc -eq 3 ] || { cat "$dir/term.out"; fail "a run stopped by SIGUSR1 to mpirun exited $rc, want 3"; }
grep -q "stopped on request after step" "$dir/term.out" || { cat "$dir/term.out"; fail "no clean stop on SIGUSR1"; }
stopped=$(sed 's/.*ckpt-0*\([0-9]*\)\.h5/\1/' "$dir/term/LATEST")
end=$((stopped + 20)) && ckpt=$(printf 'ckpt-%08d.h5' $end)
train "$dir/straight_term" 2 6 --set train.steps=$end --set checkpoint.every=0
resume "$dir/term" 2 6 --set train.steps=$end
same_state "$dir/straight_term/$ckpt" "$dir/term/$ckpt" ||
  fail "stopped by SIGUSR1 at step $stopped and resumed to $end: differs from the straight run"
echo "train_resume: SIGUSR1 to mpirun, stopped at step $stopped, checkpoint, resume: identical to the straight run"

# 4. damaged checkpoints: verify names the dataset, resume falls back
cp -r "$dir/straight" "$dir/trunc"
size=$(stat -c %s "$dir/trunc/ckpt-00000040.h5")
truncate -s $((size / 2)) "$dir/trunc/ckpt-00000040.h5"
if "$ddpt" ckpt verify "$dir/trunc/ckpt-00000040.h5" >"$dir/v.out" 2>&1; then fail "verify passed a truncated file"; fi
resume "$dir/trunc" 2 6
grep -q "ckpt-00000040.h5" "$dir/trunc.out" && grep -q "ckpt-00000020.h5" "$dir/trunc.out" ||
  fail "resume from a truncated LATEST does not name both files"
cp -r "$dir/straight" "$dir/flip"
name=$("$py" - "$dir/flip/ckpt-00000040.h5" <<'PY'
import h5py, sys
path = sys.argv[1]
with h5py.File(path, "r") as f:
    name = "params/bert.encoder.layer.1.output.dense.weight"
    offset = f[name].id.get_chunk_info(0).byte_offset
with open(path, "r+b") as f:
    f.seek(offset + 100)
    b = f.read(1)
    f.seek(offset + 100)
    f.write(bytes([b[0] ^ 0x10]))
print(name)
PY
)
if "$ddpt" ckpt verify "$dir/flip/ckpt-00000040.h5" >"$dir/v.out" 2>&1; then fail "verify passed a bit flip"; fi
grep -q "$name" "$dir/v.out" || { cat "$dir/v.out"; fail "verify does not name the damaged dataset $name"; }
resume "$dir/flip" 2 6
grep -q "ckpt-00000020.h5" "$dir/flip.out" || fail "resume did not fall back from a bit-flipped LATEST"
echo "train_resume: truncated and bit-flipped checkpoints: verify names the dataset, resume falls back"

# 5. kill -9 inside a checkpoint write. DDPT_TEST_CKPT_HOLD (storage/ckpt_dir.c)
# holds the commit of checkpoint 3 once its temporary file is written, before
# the rename, and creates a marker file; the kill lands there. LATEST still
# names checkpoint 2, which verifies; the temporary file of 3 is there and 3
# is not; resumed, the run ends bit-identical to a straight run and the dead
# writer's temporary file is gone.
train "$dir/straight6" 1 6 --set train.steps=6 --set checkpoint.every=1
# shellcheck disable=SC2086
DDPT_TEST_CKPT_HOLD="3:$dir/held" "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/crash" $common \
  --set train.batch_size=6 --set train.steps=6 --set checkpoint.every=1 >"$dir/crash.out" 2>&1 &
job=$!
wait_for $job "$dir/crash.out" "checkpoint 3 was not held" test -e "$dir/held"
kill -9 $job
wait $job 2>/dev/null || true
[ "$(cat "$dir/crash/LATEST")" = ckpt-00000002.h5 ] ||
  fail "killed inside checkpoint 3's write, LATEST names $(cat "$dir/crash/LATEST")"
ls -a "$dir/crash" | grep -q '^\.ckpt-00000003\.h5\.tmp-' ||
  fail "no temporary file of checkpoint 3 at the kill: $(ls -a "$dir/crash")"
[ ! -e "$dir/crash/ckpt-00000003.h5" ] || fail "checkpoint 3 was committed before the kill"
"$ddpt" ckpt verify "$dir/crash/ckpt-00000002.h5" >/dev/null || fail "after kill -9, LATEST's file does not verify"
resume "$dir/crash" 1 6
same_state "$dir/straight6/ckpt-00000006.h5" "$dir/crash/ckpt-00000006.h5" ||
  fail "killed inside checkpoint 3's write and resumed: differs from the straight run"
! ls -a "$dir/crash" | grep -q '\.tmp-' || fail "the killed writer's temporary file is still there: $(ls -a "$dir/crash")"
echo "train_resume: kill -9 inside checkpoint 3's write: LATEST kept checkpoint 2, resume is bit-identical"
# 6. a config that changes the model cannot resume; a second SIGINT aborts
printf '[model]\npreset = bert-tiny\nhidden_size = 64\n' >"$dir/wider.ini"
if "$ddpt" train --resume "$dir/straight" "$dir/wider.ini" --threads 1 >"$dir/wider.out" 2>&1; then
  fail "a resume that changes hidden_size was accepted"
fi
grep -q "changes the model (hidden_size 128 in the checkpoint, 64 now)" "$dir/wider.out" && ! grep -q "nsp" "$dir/wider.out" ||
  { cat "$dir/wider.out"; fail "the refused resume does not name the change"; }
# bert-small: its checkpoint takes long enough to be interrupted again.
"$ddpt" train "$dir/tiny.ini" --run-dir "$dir/int" $common --set model.preset=bert-small --set train.batch_size=6 \
  --set train.steps=1000000 --set checkpoint.every=0 >"$dir/int.out" 2>&1 &
job=$!
wait_for $job "$dir/int.out" "the SIGINT run did not start" logged_step "$dir/int/metrics.jsonl" 3
kill -INT $job
sleep 0.1 # two signals sent at once merge into one delivery
kill -INT $job
rc=0; wait $job || rc=$?
[ $rc -eq 130 ] || { cat "$dir/int.out"; fail "two SIGINTs: exit $rc, want 130 (aborted at once)"; }
echo "train_resume: a model change is refused on resume; a second SIGINT aborts at once"
echo "train_resume: ok"
