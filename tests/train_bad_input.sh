#!/bin/sh
# ddpt train's bad inputs: each fails at start with one clear line naming
# what is wrong (and the figures where there are any), exit 1 or 2, and
# writes no checkpoint.
set -u
ddpt=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
fail() { echo "train_bad_input: $*"; status=1; }
"$(dirname "$0")/lib/even_corpus.sh" "$ddpt" "$dir" || { echo "making the corpus failed"; exit 1; }
printf '[model]\npreset = bert-tiny\n[log]\neval_every = 0\n' >"$dir/tiny.ini"

expect() { # what exit-code pattern... -- args
  what=$1 code=$2; shift 2
  out=$("$ddpt" train "$@" --threads 1 2>&1); rc=$?
  [ "$rc" = "$code" ] || fail "$what: exit $rc, want $code: $out"
  last=$(printf '%s\n' "$out" | grep '^ddpt train:' | tail -1)
  [ -n "$last" ] || fail "$what: no 'ddpt train:' line in: $out"
  printf '%s' "$last"
}
run="--run-dir $dir/run --set data.corpus=$dir/corpus --set train.steps=2"

m=$(expect "missing corpus" 1 "$dir/tiny.ini" --run-dir "$dir/run" --set data.corpus="$dir/nothing")
echo "$m" | grep -q "$dir/nothing" || fail "missing corpus: path not named: $m"
m=$(expect "vocab mismatch" 1 "$dir/tiny.ini" $run --set model.vocab_size=999)
echo "$m" | grep -q "999" && echo "$m" | grep -q "205" || fail "vocab mismatch: both sizes not named: $m"
m=$(expect "batch too large" 1 "$dir/tiny.ini" $run --set model.preset=bert-base --set train.batch_size=65536)
echo "$m" | grep -q "GiB" || fail "batch too large: no figure: $m"
m=$(expect "missing config" 1 "$dir/none.ini" $run)
echo "$m" | grep -q "none.ini" || fail "missing config: file not named: $m"
printf '[optim]\nlearning_rate = 1\n' >"$dir/typo.ini"
m=$(expect "unknown key" 1 "$dir/typo.ini" $run)
echo "$m" | grep -q "learning_rate" || fail "unknown key not named: $m"
m=$(expect "out of range" 1 "$dir/tiny.ini" $run --set optim.lr=-1)
echo "$m" | grep -q "above 0" || fail "out of range: range not named: $m"
m=$(expect "no config" 2)
m=$(expect "unknown option" 2 "$dir/tiny.ini" --bogus)
m=$(expect "resume without checkpoints" 1 --resume "$dir/empty")
[ -z "$(ls "$dir/run" 2>/dev/null | grep ckpt)" ] || fail "a failed start wrote a checkpoint"
[ $status = 0 ] && echo "train_bad_input: ok"
exit $status
