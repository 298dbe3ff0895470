#!/bin/sh
# `mpirun ddpt finetune` end to end, on a small generated labelled corpus
# (ddpt shard --task classify / tag) and a bert-tiny pretrained briefly:
#  1. Loading by name: the log names the new head with its shapes and the
#     unused MLM head; a fine-tuned checkpoint as --init loads its head too.
#  2. 2 ranks x b = 1 rank x 2b = 1 rank accumulating 2 x b (classify, and
#     tag with the CRF): parameters within 2e-6 after 20 SGD steps.
#  3. Exact resume: 60 steps straight = 30, --resume, 30 more (2 ranks,
#     dropout on, evaluations inside): /params and /optim bit-identical,
#     metrics.jsonl lines 31-60 equal, the same BEST and report.json.
#  4. Evaluation: BEST names the best evaluation's checkpoint, survives
#     [checkpoint] keep = 1, and report.json holds the confusion matrix;
#     accuracy beats the majority class.
#  5. [finetune] rates: after one AdamW step (first step = lr * sign(g)),
#     frozen entries are unchanged with zero moments, and the largest change
#     of each entry is its learning rate: head_lr for the head, lr * d^(N-i)
#     for layer i, lr * d^(N+1) for the embeddings.
#  6. Bad input, one line each: train on a labelled corpus, finetune on a
#     pretraining one, finetune without --init, a [model] hidden_size that is
#     not --init's, resume on a corpus with other labels, an --init head of
#     another shape.
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
"$lib/words_text.sh" "$dir"
"$py" - "$dir" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(3)
words = ["w%03d" % i for i in range(200)]
def classify(path, names, n):
    with open(path, "w") as f:
        for _ in range(n):
            k = r.randrange(len(names))
            ws = [words[k * 60 + r.randrange(60)] if r.random() < 0.5 else r.choice(words) for _ in range(10)]
            f.write("%s\t%s\n" % (names[k], " ".join(ws)))
classify(d + "/cls.tsv", ["neg", "neu", "pos"], 400)
classify(d + "/two.tsv", ["neg", "pos"], 200)
with open(d + "/tag.conll", "w") as f:
    for _ in range(300):
        for _ in range(r.randrange(5, 12)):
            x = r.random()
            if x < 0.2:
                f.write("w%03d B-PER\n" % r.randrange(30))
                if r.random() < 0.5: f.write("w%03d I-PER\n" % (30 + r.randrange(20)))
            elif x < 0.3: f.write("w%03d B-LOC\n" % (50 + r.randrange(20)))
            else: f.write("w%03d O\n" % (70 + r.randrange(130)))
        f.write("\n")
PY
shard() { # out task input options...
  out=$1 task=$2 input=$3; shift 3
  "$ddpt" shard --task "$task" --vocab "$dir/vocab.txt" --out "$dir/$out" --shards 2 --seq-len 32 --seed 1 \
    "$@" "$dir/$input" >/dev/null || fail "sharding $input failed"
}
shard cls classify cls.tsv --format tsv --valid-fraction 0.2
shard two classify two.tsv --format tsv --valid-fraction 0.2
shard tag tag tag.conll --valid-fraction 0.2
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/pre" --shards 2 --seq-len 32 --seed 1 "$dir/text.txt" \
  >/dev/null || fail "sharding the pretraining text failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/pre.ini"
"$ddpt" train "$dir/pre.ini" --run-dir "$dir/pre-run" --threads 1 --set data.corpus="$dir/pre" \
  --set train.steps=10 --set train.batch_size=8 --set log.eval_every=0 >"$dir/pre.out" 2>&1 ||
  { cat "$dir/pre.out"; fail "pretraining failed"; }
init=$dir/pre-run/ckpt-00000010.h5
printf '[optim]\nlr = 1e-3\n' >"$dir/ft.ini"
common="--threads 1 --set log.every=1 --set train.hash_every=5"
finetune() { # name ranks batch options...
  name=$1 np=$2 b=$3; shift 3
  # shellcheck disable=SC2086
  mpi -np "$np" "$ddpt" finetune "$dir/ft.ini" --run-dir "$dir/$name" $common --set train.batch_size="$b" "$@" \
    >>"$dir/$name.out" 2>&1 || { cat "$dir/$name.out"; fail "fine-tuning $name failed"; }
}

# 1. what --init loaded, what is new, what is unused
finetune load 1 8 --init "$init" --set data.corpus="$dir/cls" --set train.steps=2 --set log.eval_every=0
for want in "init: new: classifier.weight \[3, 128\]" "init: new: classifier.bias \[3\]" \
  "init: new: bert.pooler.dense.weight \[128, 128\]" "init: unused: cls.predictions.\* (5 tensors" \
  "init: 37 of 41 tensors loaded"; do
  grep -q "$want" "$dir/load.out" || { cat "$dir/load.out"; fail "the load report lacks '$want'"; }
done
finetune again 1 8 --init "$dir/load/ckpt-00000002.h5" --set data.corpus="$dir/cls" --set train.steps=1 \
  --set log.eval_every=0
grep -q "init: 41 of 41 tensors loaded" "$dir/again.out" || { cat "$dir/again.out"; fail "a fine-tuned --init did not load its head"; }
# eval_every = 0 still scores the final model: report.json and BEST exist.
"$py" -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['final'] and r['best'], r" \
  "$dir/again/report.json" || fail "eval_every = 0: no final evaluation in report.json"
[ -s "$dir/again/BEST" ] || fail "eval_every = 0: no BEST"
echo "train_finetune: --init loads the encoder by name, names the new head and the unused MLM head"

# 2. data parallelism: 2 ranks x 4 = 1 rank x 8 = 1 rank x 2 x 4
sgd="--set optim.name=sgd --set optim.lr=0.05 --set optim.momentum=0.9 --set schedule.kind=constant \
  --set schedule.warmup_steps=0 --set train.steps=20 --set log.eval_every=0 --set checkpoint.every=20 \
  --set model.hidden_dropout_prob=0 --set model.attention_probs_dropout_prob=0 --init $init"
for task in cls tag; do
  extra=""
  [ $task = tag ] && extra="--set finetune.crf=true"
  # shellcheck disable=SC2086
  finetune "$task-one" 1 8 $sgd $extra --set data.corpus="$dir/$task"
  # shellcheck disable=SC2086
  finetune "$task-np2" 2 4 $sgd $extra --set data.corpus="$dir/$task"
  # shellcheck disable=SC2086
  finetune "$task-accum" 1 4 $sgd $extra --set data.corpus="$dir/$task" --set train.accumulation=2
done
"$py" - "$dir" <<'PY' || fail "data-parallel fine-tuning differs from one rank"
import h5py, numpy as np, sys
d = sys.argv[1]
def params(name):
    with h5py.File(f"{d}/{name}/ckpt-00000020.h5", "r") as f:
        return {k: f["params"][k][()] for k in f["params"]}
for task in ("cls", "tag"):
    ref = params(task + "-one")
    assert ("crf.transitions" in ref) == (task == "tag")
    for name in ("np2", "accum"):
        p = params(f"{task}-{name}")
        assert p.keys() == ref.keys()
        worst = max(float(np.max(np.abs(p[k] - ref[k]))) for k in ref)
        print(f"train_finetune: {task} {name}: max |param - 1-rank param| = {worst:.2e}")
        assert worst <= 2e-6, f"{task}-{name} differs from 1 rank by {worst}"
PY

# 3. exact resume, evaluations and BEST included
# (a constant schedule: a linear one's slope would follow the step count)
ev="--init $init --set data.corpus=$dir/cls --set log.eval_every=10 --set checkpoint.keep=1 \
  --set schedule.kind=constant --set schedule.warmup_steps=3"
# shellcheck disable=SC2086
finetune straight 2 8 $ev --set train.steps=60
# shellcheck disable=SC2086
finetune split 2 8 $ev --set train.steps=30
mpi -np 2 "$ddpt" finetune --resume "$dir/split" $common --set train.batch_size=8 --set train.steps=60 \
  >>"$dir/split.out" 2>&1 || { cat "$dir/split.out"; fail "resuming split failed"; }
h5diff -q "$dir/straight/ckpt-00000060.h5" "$dir/split/ckpt-00000060.h5" /params /params &&
  h5diff -q "$dir/straight/ckpt-00000060.h5" "$dir/split/ckpt-00000060.h5" /optim /optim ||
  fail "30 + resume + 30 steps differ from 60 straight"
cmp -s "$dir/straight/BEST" "$dir/split/BEST" || fail "BEST differs after resume"
"$py" - "$dir" <<'PY' || fail "metrics or report differ after resume"
import json, sys
d = sys.argv[1]
def rows(p):
    return {r["step"]: {k: v for k, v in r.items() if not k.endswith(("_s", "_frac"))} for r in map(json.loads, open(p))}
a, b = rows(d + "/straight/metrics.jsonl"), rows(d + "/split/metrics.jsonl")
assert sorted(b) == list(range(1, 61)), sorted(b)
assert all(a[s] == b[s] for s in range(31, 61)), "lines for steps 31-60 differ"
assert all("eval_accuracy" in a[s] and "mlm_loss" not in a[s] for s in (10, 30, 60))
ra, rb = (json.load(open(d + f"/{n}/report.json")) for n in ("straight", "split"))
del ra["seconds"], rb["seconds"]
assert ra == rb, "report.json differs"
PY
echo "train_finetune: 60 straight == 30 + resume + 30 (params, optim, metrics 31-60, BEST, report.json)"

# 4. BEST and report.json
"$py" - "$dir/straight" <<'PY' || fail "BEST or report.json is wrong"
import json, os, sys
d = sys.argv[1]
rows = [json.loads(l) for l in open(d + "/metrics.jsonl")]
evals = [r for r in rows if "eval_accuracy" in r]
assert [r["step"] for r in evals] == [10, 20, 30, 40, 50, 60], [r["step"] for r in evals]
best = max(evals, key=lambda r: (r["eval_accuracy"], -r["step"]))
name = "ckpt-%08d.h5" % best["step"]
assert open(d + "/BEST").read() == name + "\n", open(d + "/BEST").read()
assert os.path.exists(d + "/" + name), "keep = 1 pruned the best checkpoint"
assert [r["step"] for r in evals if r["eval_best"]][-1] == best["step"]
rep = json.load(open(d + "/report.json"))
assert rep["task"] == "classify" and rep["labels"] == ["neg", "neu", "pos"]
assert rep["best_metric"] == "accuracy" and rep["best"]["step"] == best["step"]
assert rep["best"]["value"] == best["eval_accuracy"] and rep["final"]["step"] == 60
conf = rep["final"]["confusion"]
assert len(conf) == 3 and sum(map(sum, conf)) == rep["final"]["total"]
support = [sum(row) for row in conf]
majority = max(support) / sum(support)
print("train_finetune: best step %d accuracy %.3f (BEST %s), final %.3f, majority-class baseline %.3f"
      % (best["step"], best["eval_accuracy"], name, rep["final"]["accuracy"], majority))
assert rep["best"]["value"] > majority, "no better than the majority class"
PY

# 5. frozen entries and per-entry learning rates
rates="--init $dir/load/ckpt-00000002.h5 --set data.corpus=$dir/cls --set train.steps=1 --set log.eval_every=0 \
  --set schedule.kind=constant --set schedule.warmup_steps=0 --set optim.weight_decay=0 --set optim.lr=1e-3 \
  --set finetune.head_lr=4e-3 --set finetune.layer_lr_decay=0.5"
# shellcheck disable=SC2086
finetune decay 1 8 $rates
# shellcheck disable=SC2086
finetune frozen 1 8 $rates --set finetune.freeze_embeddings=true --set finetune.freeze_layers=1
"$py" - "$dir" <<'PY' || fail "frozen entries or learning-rate scales are wrong"
import h5py, numpy as np, sys
d = sys.argv[1]
def group(path, g):
    with h5py.File(path, "r") as f:
        return {k: f[g][k][()] for k in f[g]}
init = group(d + "/load/ckpt-00000002.h5", "params")
def rate(name):
    if name.startswith("bert.embeddings."): return 1e-3 * 0.5 ** 3
    if name.startswith("bert.encoder.layer."): return 1e-3 * 0.5 ** (2 - int(name.split(".")[3]))
    return 4e-3
after = group(d + "/decay/ckpt-00000001.h5", "params")
# (not the attention key bias: its true gradient is 0, so |g| is near eps)
for k, v in ((k, v) for k, v in after.items() if not k.endswith("key.bias")):
    step = float(np.max(np.abs(v - init[k])))
    assert abs(step - rate(k)) <= 0.01 * rate(k), f"{k}: largest change {step:.3g}, want {rate(k):.3g}"
after, m = group(d + "/frozen/ckpt-00000001.h5", "params"), group(d + "/frozen/ckpt-00000001.h5", "optim/m")
for k, v in after.items():
    frozen = k.startswith("bert.embeddings.") or k.startswith("bert.encoder.layer.0.")
    assert np.array_equal(v, init[k]) == frozen and (not frozen or not m[k].any()), f"{k}: frozen {frozen}"
print("train_finetune: one step moves each entry by its rate (head 4e-3, layers 5e-4/2.5e-4, embeddings "
      "1.25e-4); frozen embeddings and layer 0 unchanged, moments zero")
PY

# 6. bad input: one line each
refused() { # what needle command...
  what=$1 needle=$2; shift 2
  rc=0
  "$@" >"$dir/bad.out" 2>&1 || rc=$?
  [ $rc != 0 ] || fail "$what: exit 0"
  line=$(grep '^ddpt' "$dir/bad.out" || true)
  [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] || { cat "$dir/bad.out"; fail "$what: not one 'ddpt' line"; }
  printf '%s\n' "$line" | grep -q -- "$needle" || fail "$what: '$line' does not say '$needle'"
  echo "train_finetune: refused, $what: $line"
}
refused "train on a labelled corpus" "ddpt finetune" \
  "$ddpt" train "$dir/pre.ini" --run-dir "$dir/bad1" --threads 1 --set data.corpus="$dir/cls"
refused "finetune on a pretraining corpus" "ddpt train" \
  "$ddpt" finetune "$dir/ft.ini" --init "$init" --run-dir "$dir/bad2" --threads 1 --set data.corpus="$dir/pre"
refused "finetune without --init" "--init MODEL" \
  "$ddpt" finetune "$dir/ft.ini" --run-dir "$dir/bad3" --threads 1 --set data.corpus="$dir/cls"
refused "a hidden size that is not --init's" "hidden_size is 256 in the config but 128" \
  "$ddpt" finetune "$dir/ft.ini" --init "$init" --run-dir "$dir/bad4" --threads 1 --set data.corpus="$dir/cls" \
  --set model.hidden_size=256
cp -r "$dir/split" "$dir/relabel"
refused "resume on a corpus with other labels" '\["neg","neu","pos"\] but corpus .*two has 2 labels' \
  "$ddpt" finetune --resume "$dir/relabel" --threads 1 --set data.corpus="$dir/two" --set train.steps=40
refused "an --init head of another shape" "classifier.weight is \[3, 128\] in .*load/ckpt-00000002.h5 but this model needs \[2, 128\]" \
  "$ddpt" finetune "$dir/ft.ini" --init "$dir/load/ckpt-00000002.h5" --run-dir "$dir/bad6" --threads 1 \
  --set data.corpus="$dir/two"
echo "train_finetune: ok"
