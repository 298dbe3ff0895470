#!/bin/sh
# One corpus, many readers (issue 19; issue 16 rows 6, 7 and 10):
#  1. two `ddpt train` runs and a `ddpt corpus verify` on one corpus at once
#     all succeed, and each run's sample log and final parameters equal
#     those of the same run made alone;
#  2. the corpus bind-mounted read-only trains, verifies and samples;
#  3. a recursive listing with checksums of the corpus is the same after
#     all of the above: no reader wrote into it (no LOCK, LOG, MANIFEST);
#  4. manifest or vocab edits (a shard's count lowered, totals wrong, vocab
#     SHA-256 wrong, vocab.txt edited, vocab size too small) make `ddpt
#     train` refuse at open with one line naming the shard or the file;
#     a shard's token count lowered is found by `ddpt corpus verify`;
#  5. 200 bytes flipped inside a shard's table: `corpus verify` names the
#     block checksum mismatch and the shard, and `corpus sample` fails.
# Needs root (mount --bind); the mount is removed on exit.
set -eu
ddpt=$1
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
corpus=$dir/corpus
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"
ro=$dir/ro
cleanup() {
  mountpoint -q "$ro" 2>/dev/null && umount "$ro"
  rm -rf "$dir"
}
trap cleanup EXIT

# Every file's path, size, mode and SHA-256, and every directory: a reader
# that adds, removes or rewrites anything changes it.
listing() {
  (cd "$1" && find . -printf '%y %p %s %m\n' | LC_ALL=C sort &&
    find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}
listing "$corpus" >"$dir/before.txt"

train() { # run-dir corpus seed
  "$ddpt" train "$dir/tiny.ini" --run-dir "$1" --threads 1 --set data.corpus="$2" \
    --set train.seed="$3" --set train.steps=150 --set train.batch_size=4 \
    --set log.samples=true --set log.eval_every=0 --set checkpoint.every=0 >"$1.out" 2>&1
}
same_run() { # a b
  cmp -s "$1/samples/rank-0.txt" "$2/samples/rank-0.txt" || return 1
  h5diff -q "$1/ckpt-00000150.h5" "$2/ckpt-00000150.h5" /params /params
}

# 1. alone, then together with a verify
train "$dir/alone1" "$corpus" 1 || { cat "$dir/alone1.out"; fail "run 1 alone failed"; }
train "$dir/alone2" "$corpus" 2 || { cat "$dir/alone2.out"; fail "run 2 alone failed"; }
train "$dir/both1" "$corpus" 1 & p1=$!
train "$dir/both2" "$corpus" 2 & p2=$!
"$ddpt" corpus verify "$corpus" >"$dir/verify.out" 2>&1 & p3=$!
wait $p1 || { cat "$dir/both1.out"; fail "run 1 beside run 2 and verify failed"; }
wait $p2 || { cat "$dir/both2.out"; fail "run 2 beside run 1 and verify failed"; }
wait $p3 || { cat "$dir/verify.out"; fail "verify beside two runs failed"; }
same_run "$dir/alone1" "$dir/both1" || fail "run 1 read other samples or trained otherwise beside run 2"
same_run "$dir/alone2" "$dir/both2" || fail "run 2 read other samples or trained otherwise beside run 1"
cmp -s "$dir/alone1/samples/rank-0.txt" "$dir/alone2/samples/rank-0.txt" &&
  fail "runs with seeds 1 and 2 read the same samples: the comparison proves nothing"
echo "corpus_readers: two trains and a verify at once read what each reads alone"

# 2. read-only
mkdir "$ro"
mount --bind "$corpus" "$ro" || fail "mount --bind failed (the test needs root)"
mount -o remount,ro,bind "$ro" || fail "remounting read-only failed"
touch "$ro/probe" 2>/dev/null && fail "the bind mount is writable"
train "$dir/ro1" "$ro" 1 || { cat "$dir/ro1.out"; fail "training on a read-only corpus failed"; }
same_run "$dir/alone1" "$dir/ro1" || fail "the run on the read-only corpus differs from run 1"
"$ddpt" corpus verify "$ro" >/dev/null || fail "verify on a read-only corpus failed"
"$ddpt" corpus sample "$ro" --world 2 --rank 1 --batch 4 --steps 3 >/dev/null ||
  fail "sample on a read-only corpus failed"
umount "$ro"
echo "corpus_readers: a read-only corpus trains, verifies and samples"

# 3. nothing written
listing "$corpus" >"$dir/after.txt"
diff "$dir/before.txt" "$dir/after.txt" || fail "reading the corpus changed it (diff above)"
echo "corpus_readers: the corpus is byte for byte what ddpt shard left"

# 4. edits found at open (train) or by verify, each in one line naming the culprit
refused() { # what needle... -- ddpt-args... : fails unless ddpt exits non-zero with one line holding every needle
  what=$1; shift
  : >"$dir/needles"
  while [ "$1" != "--" ]; do echo "$1" >>"$dir/needles"; shift; done
  shift
  "$ddpt" "$@" >"$dir/bad.out" 2>"$dir/bad.err" && fail "$what: ddpt $1 exited 0"
  [ "$(wc -l <"$dir/bad.err")" -eq 1 ] || { cat "$dir/bad.err"; fail "$what: not one line"; }
  while IFS= read -r n; do
    grep -q -- "$n" "$dir/bad.err" || { cat "$dir/bad.err"; fail "$what: the line lacks '$n'"; }
  done <"$dir/needles"
  [ -z "${SHOW:-}" ] || cat "$dir/bad.err"
}
train_bad() { # what needle...
  what=$1; shift
  refused "$what" "$@" -- train "$dir/tiny.ini" --run-dir "$dir/badrun" --threads 1 \
    --set data.corpus="$dir/bad" --set train.steps=2 --set train.batch_size=4
  [ -e "$dir/badrun/samples" ] && fail "$what: train started a run"
  rm -rf "$dir/badrun"
}
edit() { # python-statement-on-m: a copy of the corpus in $dir/bad, its manifest (m) edited
  rm -rf "$dir/bad"
  cp -r "$corpus" "$dir/bad"
  "$py" - "$dir/bad/manifest.json" "$1" <<'PY'
import json, sys
path, stmt = sys.argv[1], sys.argv[2]
m = json.load(open(path))
exec(stmt)
json.dump(m, open(path, "w"), indent=1)
PY
}
edit 'm["shards"][3]["sequences"] -= 1'
train_bad "a shard's sequences lowered" "shard-00003"
edit 'm["totals"]["sequences"] += 7'
train_bad "totals wrong" '"totals"'
edit 'm["vocab"]["sha256"] = "0" * 64'
train_bad "vocab SHA-256 wrong" "vocab.txt"
edit 'pass'
echo "extra" >>"$dir/bad/vocab.txt"
train_bad "vocab.txt edited" "vocab.txt"
edit 'm["vocab"]["size"] = 10'
train_bad "vocab size too small" "shard-00000 holds id"
edit 'm["shards"][5]["tokens"] -= 3; m["totals"]["tokens"] -= 3'
"$ddpt" corpus sample "$dir/bad" --world 1 --rank 0 --batch 4 --steps 1 >/dev/null ||
  fail "a lowered token count is not something open can see, yet sample failed"
refused "a shard's tokens lowered" "shard-00005 holds" -- corpus verify "$dir/bad"
echo "corpus_readers: edited manifests and vocabs are refused naming the shard or file"

# 5. damage inside a table (480 samples: 12 steps of 40 read them all)
edit 'pass'
"$py" - "$dir/bad/shard-00004" <<'PY'
import glob, sys
path = glob.glob(sys.argv[1] + "/*.ldb")[0]
data = bytearray(open(path, "rb").read())
at = len(data) // 3
for i in range(at, at + 200):
    data[i] ^= 0xA5
open(path, "wb").write(data)
PY
refused "200 bytes flipped (verify)" "block checksum mismatch" "shard-00004" -- corpus verify "$dir/bad"
refused "200 bytes flipped (sample)" "block checksum mismatch" "shard-00004" -- \
  corpus sample "$dir/bad" --world 1 --rank 0 --batch 40 --steps 12
echo "corpus_readers: a damaged block is named by verify and stops sample"
