#!/bin/sh
# ddpt predict on checkpoints from ddpt finetune: what prediction scores on
# the validation file equals what fine-tuning's evaluation scored on the
# same examples (report.json), so predict builds the inputs training built:
#  1. classify, pairs, sharded with --seq-len 24 --truncate (most pairs are
#     cut longest_first): `ddpt predict` over the validation texts, cutting
#     to the seq_len the checkpoint records, has exactly the evaluation's
#     accuracy (correct count), and --seq-len 24 gives the same output;
#  2. tag with the CRF, BIO tags: predict over the validation sentences (one
#     line of words each) has exactly the evaluation's token accuracy, and
#     the spans it prints give the evaluation's entity F1 counted the
#     conlleval way (O words are drawn from the names too, so neither
#     score is a trivial 1).
set -eu
ddpt=$1
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
"$lib/words_text.sh" "$dir"
"$py" - "$dir" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(3)
words = ["w%03d" % i for i in range(200)]
for name, n in (("train", 400), ("valid", 100)):
    with open("%s/%s.tsv" % (d, name), "w") as f:
        for _ in range(n):
            k = r.randrange(3)
            ws = [words[k * 60 + r.randrange(60)] if r.random() < 0.5 else r.choice(words)
                  for _ in range(r.randrange(5, 40))]
            h = len(ws) // 2
            f.write("%s\t%s\t%s\n" % (["neg", "neu", "pos"][k], " ".join(ws[:h]), " ".join(ws[h:])))
    with open("%s/%s.conll" % (d, name), "w") as f:
        for _ in range(n):
            for _ in range(r.randrange(5, 12)):
                x = r.random()
                if x < 0.2:
                    f.write("w%03d B-PER\n" % r.randrange(30))
                    if r.random() < 0.5:
                        f.write("w%03d I-PER\n" % (30 + r.randrange(20)))
                elif x < 0.3:
                    f.write("w%03d B-LOC\n" % (50 + r.randrange(20)))
                else:  # any word, names included: the tags cannot all be learnt
                    f.write("w%03d O\n" % r.randrange(200))
            f.write("\n")
PY
"$ddpt" shard --task classify --vocab "$dir/vocab.txt" --out "$dir/cls" --shards 1 --seq-len 24 --truncate \
  --seed 1 --valid "$dir/valid.tsv" "$dir/train.tsv" >/dev/null || fail "sharding the pairs failed"
"$ddpt" shard --task tag --vocab "$dir/vocab.txt" --out "$dir/tag" --shards 1 --seq-len 32 --seed 1 \
  --valid "$dir/valid.conll" "$dir/train.conll" >/dev/null || fail "sharding the sentences failed"
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/pre" --shards 1 --seq-len 32 --seed 1 "$dir/text.txt" \
  >/dev/null || fail "sharding the pretraining text failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/pre.ini"
"$ddpt" train "$dir/pre.ini" --run-dir "$dir/pre-run" --threads 1 --set data.corpus="$dir/pre" \
  --set train.steps=10 --set train.batch_size=8 --set log.eval_every=0 >"$dir/pre.out" 2>&1 ||
  { cat "$dir/pre.out"; fail "pretraining failed"; }
printf '[optim]\nlr = 1e-3\n' >"$dir/ft.ini"
for task in cls tag; do
  crf=false
  [ $task = tag ] && crf=true
  "$ddpt" finetune "$dir/ft.ini" --init "$dir/pre-run/ckpt-00000010.h5" --run-dir "$dir/$task-run" --threads 1 \
    --set data.corpus="$dir/$task" --set train.steps=60 --set train.batch_size=16 --set log.eval_every=60 \
    --set finetune.crf=$crf >"$dir/$task.out" 2>&1 || { cat "$dir/$task.out"; fail "fine-tuning $task failed"; }
done

cut -f2- "$dir/valid.tsv" >"$dir/valid.txt"
"$ddpt" predict --ckpt "$dir/cls-run/ckpt-00000060.h5" --seq-len 24 --json "$dir/valid.txt" >"$dir/cls24.jsonl" ||
  fail "predict --seq-len 24 failed"
"$ddpt" predict --ckpt "$dir/cls-run/ckpt-00000060.h5" --json "$dir/valid.txt" >"$dir/cls.jsonl" ||
  fail "predict (classify) failed"
cmp -s "$dir/cls24.jsonl" "$dir/cls.jsonl" || fail "predict does not cut to the recorded seq_len 24 by default"
"$py" - "$dir" <<'PY' || fail "classify: predict disagrees with fine-tuning's evaluation"
import json, sys
d = sys.argv[1]
gold = [l.split("\t")[0] for l in open(d + "/valid.tsv")]
got = [json.loads(l) for l in open(d + "/cls.jsonl")]
correct = sum(g == p["label"] for g, p in zip(gold, got))
ev = json.load(open(d + "/cls-run/report.json"))["final"]
print("classify: predict %d/%d correct (%d pairs cut to 24 tokens), fine-tuning's evaluation %d/%d"
      % (correct, len(gold), sum(p["truncated"] for p in got), ev["correct"], ev["total"]))
assert len(got) == len(gold) and ev["total"] == len(gold), (len(got), ev["total"])
assert correct == ev["correct"], (correct, ev["correct"])
assert sum(p["truncated"] for p in got) > 10
PY

"$py" - "$dir" <<'PY'
import sys
d = sys.argv[1]
sents, cur = [], []
for line in open(d + "/valid.conll"):
    if line.strip():
        cur.append(line.split()[0])
    elif cur:
        sents.append(" ".join(cur))
        cur = []
open(d + "/valid.lines", "w").write("".join(s + "\n" for s in sents))
PY
"$ddpt" predict --ckpt "$dir/tag-run/ckpt-00000060.h5" --json "$dir/valid.lines" >"$dir/tag.jsonl" ||
  fail "predict (tag) failed"
"$py" - "$dir" <<'PY' || fail "tag: predict disagrees with fine-tuning's evaluation"
import json, sys
d = sys.argv[1]
gold, cur = [], []
for line in open(d + "/valid.conll"):
    if line.strip():
        cur.append(line.split()[1])
    elif cur:
        gold.append(cur)
        cur = []
got = [json.loads(l) for l in open(d + "/tag.jsonl")]
assert len(got) == len(gold), (len(got), len(gold))
tokens = sum(len(g) for g in gold)
right = sum(a == b for g, p in zip(gold, got) for a, b in zip(g, p["tags"]))
def chunks(tags):  # BIO, every tag well-formed enough for this check: B starts, I continues its type
    out, start = set(), None
    for i, t in enumerate(tags + ["O"]):
        if start is not None and not (t.startswith("I-") and t[2:] == tags[start][2:]):
            out.add((start, i, tags[start][2:]))
            start = None
        if t.startswith("B-") or (t.startswith("I-") and start is None):
            start = i
    return out
gold_c = sum(len(chunks(g)) for g in gold)
pred_c = sum(len({(s["start"], s["end"], s["type"]) for s in p["spans"]}) for p in got)
ok_c = sum(len(chunks(g) & {(s["start"], s["end"], s["type"]) for s in p["spans"]}) for g, p in zip(gold, got))
f1 = 2 * ok_c / (gold_c + pred_c) if gold_c + pred_c else 0
ev = json.load(open(d + "/tag-run/report.json"))["final"]
print("tag (CRF): predict %d/%d tokens right, entity F1 %.4f; fine-tuning's evaluation %d/%d, F1 %.4f"
      % (right, tokens, f1, ev["tokens"] * ev["token_accuracy"], ev["tokens"], ev["f1"]))
assert all(len(p["tags"]) == len(g) for g, p in zip(gold, got))
assert ev["tokens"] == tokens and round(ev["token_accuracy"] * tokens) == right, (ev, right)
assert abs(f1 - ev["f1"]) < 1e-9, (f1, ev["f1"])
assert right < tokens and f1 < 1, "the task is learnt perfectly: the comparison proves little"
PY
echo "predict_e2e: ok"
