#!/bin/sh
# One bert-tiny training step with a checkpoint, single rank, under
# valgrind's memcheck: no invalid read or write, no use of uninitialised
# memory (--error-exitcode=1), in the training loop, the checkpoint writer
# thread and the run directory code. Open MPI's own reports are suppressed
# with the file Open MPI ships. OPENBLAS_CORETYPE=Haswell: valgrind's
# virtual CPU has no AVX-512, and without the variable ddpt would re-execute
# itself with a better kernel (trainer/blas.h), which valgrind would not
# follow.
set -eu
ddpt=$1
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"
supp=/usr/share/openmpi/openmpi-valgrind.supp
rc=0
OPENBLAS_CORETYPE=Haswell valgrind --error-exitcode=1 --leak-check=no --suppressions="$supp" \
  "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/run" --threads 1 --set data.corpus="$dir/corpus" \
  --set train.steps=1 --set train.batch_size=2 >"$dir/vg.out" 2>&1 || rc=$?
[ $rc = 0 ] || { grep -A20 "^==[0-9]*== [A-Z]" "$dir/vg.out" | head -80; fail "valgrind: exit $rc"; }
grep -q "ERROR SUMMARY: 0 errors" "$dir/vg.out" || { tail -20 "$dir/vg.out"; fail "valgrind reported errors"; }
"$ddpt" ckpt verify "$dir/run/ckpt-00000001.h5" >/dev/null || fail "the checkpoint written under valgrind does not verify"
[ "$(cat "$dir/run/STATUS")" = "done step=1" ] || fail "STATUS: $(cat "$dir/run/STATUS")"
echo "train_valgrind: one step and its checkpoint under memcheck: 0 errors"
