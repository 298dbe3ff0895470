# shellcheck shell=sh disable=SC2154 # $dir, $ddpt, $common: set by the scripts that source this
# Sourced by the `ddpt train` end-to-end scripts after lib/e2e.sh, with
# $ddpt, $dir (holding tiny.ini) and $common (options for every run) set:
#   train RUN_DIR RANKS BATCH OPTIONS...   a fresh run of $dir/tiny.ini
#   resume RUN_DIR RANKS BATCH OPTIONS...  --resume RUN_DIR
#   same_state A.h5 B.h5                   h5diff finds /params and /optim equal
# Output goes to RUN_DIR.out, shown when a run fails.
train() {
  run=$1 np=$2 b=$3; shift 3
  # shellcheck disable=SC2086
  mpi -np "$np" "$ddpt" train "$dir/tiny.ini" --run-dir "$run" $common --set train.batch_size="$b" "$@" \
    >>"$run.out" 2>&1 || { cat "$run.out"; fail "training $run failed"; }
}
resume() {
  run=$1 np=$2 b=$3; shift 3
  # shellcheck disable=SC2086
  mpi -np "$np" "$ddpt" train --resume "$run" --threads 1 --set train.batch_size="$b" "$@" \
    >>"$run.out" 2>&1 || { cat "$run.out"; fail "resuming $run failed"; }
}
same_state() {
  h5diff -q "$1" "$2" /params /params && h5diff -q "$1" "$2" /optim /optim
}
