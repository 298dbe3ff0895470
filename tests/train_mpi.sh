#!/bin/sh
# Data parallelism, end to end through `mpirun ddpt train`:
#  1. N = 2, 3, 4 ranks with per-rank batch b reach, after 20 steps, the
#     parameters of 1 rank with batch N*b, and so do 1 rank accumulating 3
#     micro-batches of 4 and 2 ranks accumulating 2 of 3 (dropout off; SGD, because Adam
#     turns the pure-rounding gradient of the attention key bias, whose true
#     value is zero, into full-size steps of either sign). Bound: 2e-6 max abs.
#  2. With dropout on, two identical 2-rank runs give identical parameters.
#  3. Over TCP (--mca btl tcp,self) the result equals the shared-memory one.
#  4. A rank killed with SIGKILL mid-run ends the job (non-zero) within 30 s.
#  5. Ranks started with different configs all stop, naming the odd rank.
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"

# 12 shards of 40 sequences: every world size reads the same samples per step.
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"

common="--threads 1 --set data.corpus=$dir/corpus --set train.steps=20 --set log.every=1 \
  --set log.eval_every=0 --set checkpoint.every=20 --set train.hash_every=5 --set optim.name=sgd \
  --set optim.lr=0.05 --set optim.momentum=0.9 --set schedule.kind=constant --set schedule.warmup_steps=0"
nodrop="--set model.hidden_dropout_prob=0 --set model.attention_probs_dropout_prob=0"
run() { # name ranks batch "mpirun options" ddpt-options...
  name=$1 np=$2 b=$3 mpiopts=$4; shift 4
  # shellcheck disable=SC2086
  mpi -np "$np" $mpiopts "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/$name" $common \
    --set train.batch_size="$b" "$@" >"$dir/$name.out" 2>&1 || { cat "$dir/$name.out"; fail "$name failed"; }
}
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"

run one 1 12 "" $nodrop
for np in 2 3 4; do run "np$np" "$np" $((12 / np)) "" $nodrop; done
run accum 1 4 "" $nodrop --set train.accumulation=3
run np2accum 2 3 "" $nodrop --set train.accumulation=2
run tcp 3 4 "--mca btl tcp,self" $nodrop
run dropA 2 6 ""
run dropB 2 6 ""

"$py" - "$dir" <<'PY' || fail "parameters differ"
import h5py, numpy as np, sys
d = sys.argv[1]
def params(name):
    with h5py.File(f"{d}/{name}/ckpt-00000020.h5", "r") as f:
        return {k: f["params"][k][()] for k in f["params"]}
ref = params("one")
for name in ("np2", "np3", "np4", "tcp", "accum", "np2accum"):
    p = params(name)
    assert p.keys() == ref.keys()
    worst = max(float(np.max(np.abs(p[k] - ref[k]))) for k in ref)
    print(f"{name}: max |param - 1-rank param| = {worst:.2e}")
    assert worst <= 2e-6, f"{name} differs from 1 rank by {worst}"
a, b = params("dropA"), params("dropB")
assert all(np.array_equal(a[k], b[k]) for k in a), "dropout runs differ"
nd = params("np2")
assert any(not np.array_equal(a[k], nd[k]) for k in a), "dropout changed nothing"
print("dropout on: two 2-rank runs bit-identical")
PY

# A rank killed mid-run: the job must end, non-zero, within 30 s.
mpi -np 3 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/kill" --threads 1 --set data.corpus="$dir/corpus" \
  --set train.steps=1000000 --set train.batch_size=4 --set log.eval_every=0 --set checkpoint.every=0 \
  --set log.every=1 >"$dir/kill.out" 2>&1 &
job=$!
# Mid-run: every rank has taken a step.
wait_for $job "$dir/kill.out" "ranks did not start training" logged_step "$dir/kill/metrics.jsonl" 2
[ "$(pgrep -f "train $dir/tiny.ini --run-dir $dir/kill" | wc -l)" -ge 3 ] || fail "fewer than 3 ranks running"
victim=$(pgrep -f "train $dir/tiny.ini --run-dir $dir/kill" | sed -n 2p)
start=$(date +%s)
kill -9 "$victim"
wait_ended $job 30 "job still running 30 s after a rank was killed"
[ $rc -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
echo "train_mpi: killed rank -> mpirun exit $rc after $(( $(date +%s) - start )) s"
# 5. rank 1 runs another learning rate: every rank stops at start, naming it
if mpi -np 1 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/odd" $common --set train.batch_size=6 : \
  -np 1 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/odd" $common --set train.batch_size=6 --set optim.lr=0.5 \
  >"$dir/odd.out" 2>&1; then fail "ranks with different configs ran"; fi
grep -q "the resolved config differs between rank 0 and rank 1" "$dir/odd.out" ||
  { cat "$dir/odd.out"; fail "the config mismatch does not name rank 1"; }
echo "train_mpi: different configs on two ranks: stopped, naming rank 1"
echo "train_mpi: ok"
