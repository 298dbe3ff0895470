# shellcheck shell=sh disable=SC2154 # $ddpt, $dir, $lib: set by the scripts and lib/e2e.sh
# Sourced after lib/e2e.sh by the bit-for-bit scripts (train_exact.sh,
# train_zero.sh): the even corpus, $dir/tiny.ini (bert-tiny), and $common:
# 6 steps logged each, checkpoints at 3 and 6 all kept; then lib/train_runs.sh.
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"
# shellcheck disable=SC2034 # used by lib/train_runs.sh
common="--threads 1 --set data.corpus=$dir/corpus --set log.every=1 --set log.eval_every=0 \
  --set train.steps=6 --set checkpoint.every=3 --set checkpoint.keep=0"
# shellcheck source=lib/train_runs.sh
. "$lib/train_runs.sh"
