#!/bin/sh
# ddpt train's failure paths, each caused for real on a corpus damaged after
# sharding or a run directory that refuses a write:
#  1. rank 0's evaluation fails (a validation record holds a token id outside
#     the vocabulary, in the third evaluation batch) under mpirun -np 2: the
#     job exits non-zero with one "ddpt train:" line naming the cause and
#     no MPI_Abort (every rank fails together), and metrics.jsonl holds no
#     evaluation figures (none from partial sums).
#  2. rank 0 fails to open the corpus (a truncated validation record) while
#     rank 1 waits in a collective: the job ends, non-zero, with one line
#     naming the shard.
#  3. rank 1 reads a truncated training record: the job ends, non-zero, with
#     rank 1's line naming the shard.
#  4. a checkpoint cannot be committed (its final name is taken by a
#     directory): exit 1, one line naming the file, LATEST unchanged and no
#     temporary file left.
#  5. a run measured in [train] tokens, not steps, runs (it once crashed).
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
# Bounded here: a failure that hangs the job must fail the test (exit 124).
mpi() { timeout 120 "$mpirun" --allow-run-as-root --oversubscribe "$@"; }

# 480 one-line documents of 30 words from a 205-token vocab; 4 training
# shards (rank r of 2 reads shards r and r + 2) and one validation shard.
corpus() { # dir
  mkdir -p "$1"
  "$lib/words_text.sh" "$1" || fail "writing the text of $1 failed"
  "$ddpt" shard --vocab "$1/vocab.txt" --out "$1/corpus" --shards 4 --seq-len 32 --format lines --seed 1 \
    --valid-fraction 0.1 "$1/text.txt" >/dev/null || fail "sharding $1 failed"
}
# Rewrites record KEY of a shard with plyvel: "oov" puts token id 65535 (the
# vocab has 205) after [CLS]; "truncate" cuts the record's last byte. ddpt
# reads the table files the manifest lists (docs/corpus.md), so the shard is
# written anew as one compacted table and the manifest lists it, as ddpt
# shard would have: the damage is in the records, not in the framing.
damage() { # shard-dir key how
  "$py" - "$@" <<'PY'
import json, os, struct, sys
import plyvel
path, key, how = sys.argv[1], struct.pack(">Q", int(sys.argv[2])), sys.argv[3]
db = plyvel.DB(path, create_if_missing=False)
value = db.get(key)
assert value is not None, f"{path}: no key {sys.argv[2]}"
if how == "oov":
    value = value[:8] + struct.pack("<H", 65535) + value[10:]  # 6-byte header, [CLS], then this id
else:
    value = value[:-1]
db.put(key, value)
records = list(db.iterator())
db.close()
plyvel.destroy_db(path)
db = plyvel.DB(path, create_if_missing=True)
for k, v in records:
    db.put(k, v)
db.compact_range()
db.close()
def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF
tables = [n for n in os.listdir(path) if n.endswith(".ldb")]
assert len(tables) == 1, tables
data = open(os.path.join(path, tables[0]), "rb").read()
manifest_path = os.path.join(os.path.dirname(path), "manifest.json")
m = json.load(open(manifest_path))
for s in m["shards"] + m["valid_shards"]:
    if s["name"] == os.path.basename(path):
        s["files"] = [{"name": tables[0], "size": len(data), "crc32c": crc32c(data),
                       "first": 0, "last": s["sequences"] - 1}]
json.dump(m, open(manifest_path, "w"), indent=1)
PY
}
# Lines of a run's output that start with prefix: exactly one, matching
# pattern. (When a rank aborts the job, Open MPI's SIGTERM makes the others
# print "ddpt train: stopping after this step": the abort cases count only
# "ddpt train: rank" lines, the reports of a failure.)
one_line() { # output-file prefix pattern what
  n=$(grep -c "^$2" "$1" || true)
  [ "$n" = 1 ] || { cat "$1"; fail "$4: $n '$2' lines, want 1"; }
  grep "^$2" "$1" | grep -q "$3" || { cat "$1"; fail "$4: the line does not say '$3'"; }
}
# Cuts the last byte of record KEY of SHARD in a fresh corpus NAME and trains
# STEPS steps on 2 ranks, evaluating every EVAL_EVERY: the job must end
# non-zero, not by the timeout, with one "ddpt train: rank" line naming rank
# RANK, the shard and the key.
truncated_record() { # name shard key steps eval-every rank what
  corpus "$dir/$1"
  damage "$dir/$1/corpus/$2" "$3" truncate
  rc=0
  # shellcheck disable=SC2086
  mpi -np 2 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/$1/run" $common --set data.corpus="$dir/$1/corpus" \
    --set train.steps="$4" --set log.eval_every="$5" >"$dir/$1.out" 2>&1 || rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$dir/$1.out"; fail "$7: exit $rc"; }
  one_line "$dir/$1.out" "ddpt train: rank" "rank $6: .*$2, key $3" "$7"
}
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"
common="--threads 1 --set train.batch_size=4 --set log.every=1 --set checkpoint.every=0"

# 1. rank 0's evaluation fails in its third batch (records 8-11)
corpus "$dir/eval"
damage "$dir/eval/corpus/valid-00000" 9 oov
rc=0
# shellcheck disable=SC2086
mpi -np 2 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/eval/run" $common --set data.corpus="$dir/eval/corpus" \
  --set train.steps=4 --set log.eval_every=2 --set data.eval_batches=4 >"$dir/eval.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || { cat "$dir/eval.out"; fail "a run whose evaluation failed on rank 0 exited 0"; }
one_line "$dir/eval.out" "ddpt train:" "rank 0: .*outside the vocabulary" "failed evaluation"
! grep -q MPI_ABORT "$dir/eval.out" || fail "an evaluation failure every rank saw was ended by MPI_Abort"
grep -q '"step":2,' "$dir/eval/run/metrics.jsonl" 2>/dev/null && fail "step 2, whose evaluation failed, was logged"
grep -q '"step":1,' "$dir/eval/run/metrics.jsonl" || fail "training did not reach the evaluation at step 2"
grep -q 'eval_' "$dir/eval/run/metrics.jsonl" && fail "metrics.jsonl holds evaluation figures from partial sums"
echo "train_failures: rank 0's evaluation fails at step 2: exit $rc, one line, no evaluation figures"

# 2. rank 0 cannot open the corpus (the validation records load at open)
truncated_record open valid-00000 3 4 2 0 "a corpus rank 0 cannot open"
echo "train_failures: rank 0 cannot open the corpus: exit $rc, one line naming the record"

# 3. rank 1 reads a damaged training record (shard 1 is rank 1's)
truncated_record read shard-00001 2 40 0 1 "a damaged training record on rank 1"
echo "train_failures: rank 1 reads a damaged record: exit $rc, one line naming it"

# 4. checkpoint 2 cannot be committed: its name is a (non-empty) directory
# shellcheck disable=SC2086
"$ddpt" train "$dir/tiny.ini" --run-dir "$dir/ckpt" $common --set data.corpus="$dir/eval/corpus" \
  --set train.steps=1 --set log.eval_every=0 >"$dir/ckpt.out" 2>&1 || { cat "$dir/ckpt.out"; fail "step 1 failed"; }
mkdir -p "$dir/ckpt/ckpt-00000002.h5/taken"
rc=0
"$ddpt" train --resume "$dir/ckpt" --threads 1 --set train.steps=2 >"$dir/ckpt.out" 2>&1 || rc=$?
[ $rc = 1 ] || { cat "$dir/ckpt.out"; fail "a checkpoint that cannot be committed: exit $rc, want 1"; }
one_line "$dir/ckpt.out" "ddpt train:" "ckpt-00000002.h5" "checkpoint that cannot be committed"
[ "$(cat "$dir/ckpt/LATEST")" = ckpt-00000001.h5 ] || fail "LATEST changed to $(cat "$dir/ckpt/LATEST")"
! ls -a "$dir/ckpt" | grep -q '\.tmp-' || fail "a temporary checkpoint was left: $(ls -a "$dir/ckpt")"
echo "train_failures: a checkpoint that cannot be committed: exit 1, one line, LATEST unchanged"
# 5. [train] tokens instead of steps: ceil(1000 / (4 x 32)) = 8 steps (the
# step count was once divided by a batch size not yet set)
rc=0
# shellcheck disable=SC2086
"$ddpt" train "$dir/tiny.ini" --run-dir "$dir/tokens" $common --set data.corpus="$dir/eval/corpus" \
  --set train.steps=0 --set train.tokens=1000 --set log.eval_every=0 >"$dir/tokens.out" 2>&1 || rc=$?
[ $rc = 0 ] || { cat "$dir/tokens.out"; fail "a run of [train] tokens = 1000: exit $rc"; }
grep -q "^done: 8 steps" "$dir/tokens.out" || { cat "$dir/tokens.out"; fail "[train] tokens = 1000 did not run 8 steps"; }
echo "train_failures: [train] tokens = 1000 runs 8 steps"
echo "train_failures: ok"
