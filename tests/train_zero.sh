#!/bin/sh
# ZeRO-1 ([train] zero = 1, docs/distributed.md "ZeRO-1"), through `mpirun
# ddpt train`, bert-tiny with dropout on, AdamW and clipping at 1.0 (which
# fires: the check below makes sure, so the sharded norm is tested too) and
# 1 MiB buckets (several buckets, so several ranges per shard):
#  1. zero = 1 on 1 x 4, 2 x 2 and 4 x 1 micro-batches ends with /params and
#     /optim bit-identical to zero = 0 on 2 x 2; on 3 ranks (not a power of
#     two) zero = 1 and zero = 0 are bit-identical as well.
#  2. The zero = 1 run's step-3 checkpoint (the full moments, gathered)
#     resumed on 4 ranks with zero = 0, and the zero = 0 run's resumed on 1
#     rank with zero = 1, end bit for bit as the run not stopped.
#  3. Memory: bert-small on 2 ranks, 2 steps; rank 1's peak RSS with zero = 1
#     is lower than with zero = 0 by half the Adam state (4 bytes per
#     parameter), within 25%. (Rank 0 gathers the full state for the
#     checkpoint, so its peak is not the one compared.)
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
# shellcheck source=lib/exact_runs.sh
. "$lib/exact_runs.sh"
common="$common --set train.bucket_mb=1"
resume_copy() { # run from ranks options...
  run=$1 from=$2 np=$3; shift 3
  mkdir "$run" && cp "$from/ckpt-00000003.h5" "$run/" && echo ckpt-00000003.h5 >"$run/LATEST"
  mpi -np "$np" "$ddpt" train --resume "$run" --threads 1 "$@" >"$run.out" 2>&1 ||
    { cat "$run.out"; fail "resuming $from's step 3 on $np ranks ($*) failed"; }
}

# 1. zero = 1 against zero = 0
train "$dir/ref" 2 3 --set train.accumulation=2
grep -q '"grad_norm":[0-9]*[1-9][0-9]*\.' "$dir/ref/metrics.jsonl" ||
  fail "no step had a gradient norm above 1: clipping (and so the sharded norm) is not exercised"
train "$dir/z1x4" 1 3 --set train.accumulation=4 --set train.zero=1
train "$dir/z2x2" 2 3 --set train.accumulation=2 --set train.zero=1
train "$dir/z4x1" 4 3 --set train.accumulation=1 --set train.zero=1
for run in z1x4 z2x2 z4x1; do
  same_state "$dir/ref/ckpt-00000006.h5" "$dir/$run/ckpt-00000006.h5" ||
    fail "zero = 1 on $run differs from zero = 0 on 2 x 2"
done
echo "train_zero: zero = 1 on 1 x 4, 2 x 2 and 4 x 1: /params and /optim bit-identical to zero = 0"
train "$dir/ref3" 3 2 --set train.steps=3
train "$dir/z3" 3 2 --set train.steps=3 --set train.zero=1
same_state "$dir/ref3/ckpt-00000003.h5" "$dir/z3/ckpt-00000003.h5" || fail "zero = 1 on 3 ranks differs from zero = 0"
echo "train_zero: 3 ranks: zero = 1 bit-identical to zero = 0"

# 2. checkpoints move between modes and rank counts
resume_copy "$dir/z_to_4" "$dir/z2x2" 4 --set train.zero=0
same_state "$dir/ref/ckpt-00000006.h5" "$dir/z_to_4/ckpt-00000006.h5" ||
  fail "zero = 1 on 2 ranks resumed with zero = 0 on 4 differs from the run not stopped"
resume_copy "$dir/ref_to_1" "$dir/ref" 1 --set train.zero=1
same_state "$dir/ref/ckpt-00000006.h5" "$dir/ref_to_1/ckpt-00000006.h5" ||
  fail "zero = 0 on 2 ranks resumed with zero = 1 on 1 differs from the run not stopped"
echo "train_zero: zero 1 -> 0 on 4 ranks and 0 -> 1 on 1 rank resume bit for bit"
# 3. peak RSS per rank
printf '[model]\npreset = bert-small\n' >"$dir/small.ini"
for z in 0 1; do
  # shellcheck disable=SC2016 # expanded by the rank's shell
  mpi -np 2 sh -c '/usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"' "$dir/mem$z" \
    "$ddpt" train "$dir/small.ini" --run-dir "$dir/mem$z" --threads 1 --set data.corpus="$dir/corpus" \
    --set train.steps=2 --set train.batch_size=2 --set log.eval_every=0 --set train.zero=$z \
    >"$dir/mem$z.out" 2>&1 || { cat "$dir/mem$z.out"; fail "bert-small with zero = $z failed"; }
done
params=$(sed -n 's/^model: .*, \([0-9]*\) parameters$/\1/p' "$dir/mem0.out")
rss0=$(tail -1 "$dir/mem0.rss.1") rss1=$(tail -1 "$dir/mem1.rss.1")
echo "train_zero: bert-small ($params parameters), rank 1 peak RSS: zero 0 $rss0 KiB, zero 1 $rss1 KiB"
awk -v p="$params" -v a="$rss0" -v b="$rss1" 'BEGIN {
  want = p * 4 / 1024; got = a - b
  printf "train_zero: saved %.0f KiB, half the Adam state is %.0f KiB (ratio %.2f)\n", got, want, got / want
  exit !(p > 0 && got > 0.75 * want && got < 1.25 * want) }' ||
  fail "zero = 1 did not save half the Adam state on rank 1"
echo "train_zero: ok"
