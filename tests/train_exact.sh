#!/bin/sh
# Exactness across rank counts (docs/distributed.md, "Exact on any number of
# ranks"), through `mpirun ddpt train`, bert-tiny with dropout on and AdamW:
#  1. 1 rank x accumulation 4, 2 x 2 and 4 x 1 (3 sequences per micro-batch)
#     end with bit-identical /params and /optim; their metrics.jsonl carry
#     consistent communication figures.
#  2. The 2 x 2 run's checkpoint at step 3, resumed on 4 ranks and on 1 rank
#     with nothing set, takes accumulation 1 and 4 (saying so) and ends bit
#     for bit as the run that was not stopped.
#  3. On 3 ranks that resume is refused with one line naming 1, 2 or 4;
#     with train.accumulation and train.batch_size set it goes on, saying it
#     is not bit for bit.
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
# shellcheck source=lib/exact_runs.sh
. "$lib/exact_runs.sh"
# Resumes RUN_DIR's copy of the 2 x 2 run's step-3 checkpoint on RANKS, with OPTIONS.
resume_copy() { # run ranks options...
  run=$1 np=$2; shift 2
  mkdir "$run" && cp "$dir/np2/ckpt-00000003.h5" "$run/" && echo ckpt-00000003.h5 >"$run/LATEST"
  mpi -np "$np" "$ddpt" train --resume "$run" --threads 1 "$@" >"$run.out" 2>&1
}

# 1. the same step of 4 micro-batches on 1, 2 and 4 ranks
train "$dir/np1" 1 3 --set train.accumulation=4
train "$dir/np2" 2 3 --set train.accumulation=2
train "$dir/np4" 4 3 --set train.accumulation=1
for np in 2 4; do
  same_state "$dir/np1/ckpt-00000006.h5" "$dir/np$np/ckpt-00000006.h5" ||
    fail "$np ranks x accumulation $((4 / np)) differ from 1 rank x accumulation 4"
done
echo "train_exact: 1 x 4, 2 x 2 and 4 x 1 micro-batches: /params and /optim bit-identical"

# The exchange's figures in metrics.jsonl (docs/distributed.md, "How much
# communication is hidden"): on one rank nothing is exchanged (comm_s 0, the
# fraction null); on 2 and 4 the fraction is 1 - post_backward_wait_s /
# comm_s within [0, 1], and the final wait lies inside the post-backward one.
"$py" - "$dir" <<'PY' || fail "metrics.jsonl's communication figures are missing or inconsistent"
import json, sys
for np in (1, 2, 4):
    for r in map(json.loads, open(f"{sys.argv[1]}/np{np}/metrics.jsonl")):
        frac, comm, wait, post = (r[k] for k in ("comm_hidden_frac", "comm_s", "comm_wait_s", "post_backward_wait_s"))
        assert 0 <= wait <= post, (np, r)
        if np == 1:
            assert comm == 0 and frac is None, (np, r)
        else:
            assert comm > 0 and 0 <= frac <= 1 and abs(frac - min(1, max(0, 1 - post / comm))) < 1e-9, (np, r)
PY
echo "train_exact: comm_s, comm_wait_s, post_backward_wait_s and comm_hidden_frac consistent on 1, 2 and 4 ranks"

# 2. resumed on 4 and on 1 rank: accumulation derived, bit for bit
for np in 4 1; do
  resume_copy "$dir/on$np" $np || { cat "$dir/on$np.out"; fail "resuming on $np ranks failed"; }
  grep -q "accumulation $((4 / np)) (was 2 on 2) keeps the step of 4 micro-batches of 3 sequences" "$dir/on$np.out" ||
    { cat "$dir/on$np.out"; fail "the resume on $np ranks does not say which accumulation it took"; }
  same_state "$dir/np2/ckpt-00000006.h5" "$dir/on$np/ckpt-00000006.h5" ||
    fail "3 steps on 2 ranks + 3 resumed on $np differ from 6 on 2 ranks"
done
echo "train_exact: resumed on 4 and on 1 rank, accumulation derived: bit for bit as the run not stopped"

# 3. 3 ranks cannot split 4 micro-batches: refused, unless the step is set
if resume_copy "$dir/on3" 3; then fail "a resume on 3 ranks of a 4-micro-batch step was accepted"; fi
grep -q "3 ranks cannot continue the checkpoint's step of 4 micro-batches of 3 sequences.*resume on 1, 2 or 4 ranks" \
  "$dir/on3.out" || { cat "$dir/on3.out"; fail "the refusal does not name the rank counts that fit"; }
rm -rf "$dir/on3"
resume_copy "$dir/on3" 3 --set train.accumulation=1 --set train.batch_size=4 ||
  { cat "$dir/on3.out"; fail "a resume on 3 ranks with the step set failed"; }
grep -q "accumulation 1 x batch 4 as set.*not bit for bit" "$dir/on3.out" ||
  { cat "$dir/on3.out"; fail "the resume with the step set does not say it is not bit for bit"; }
echo "train_exact: 3 ranks refused naming 1, 2 or 4; with the step set it goes on, saying so"
echo "train_exact: ok"
