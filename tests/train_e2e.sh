#!/bin/sh
# End to end on real text: train a vocab on Debian's fortunes, shard them,
# train bert-tiny for a few hundred steps, and check what a user would:
# the loss falls well below its start (about ln(vocab size)), evaluation
# ran, metrics.jsonl parses, the plot is written, and a second identical run
# logs identical figures (every field but the timing ones).
set -eu
ddpt=$1 src=$2
py=/usr/bin/python3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "train_e2e: $*"; exit 1; }

mkdir "$dir/text"
for f in computers science literature wisdom people politics work love education fortunes; do
  cp "/usr/share/games/fortunes/$f" "$dir/text/" || fail "Debian's fortunes are missing: run scripts/install-deps.sh"
done
"$ddpt" vocab --size 3000 --min-frequency 5 --out "$dir/vocab.txt" "$dir/text" >/dev/null || fail "ddpt vocab failed"
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/corpus" --shards 2 --seq-len 64 --format fortune \
  --valid-fraction 0.02 --seed 1 "$dir/text" >/dev/null || fail "ddpt shard failed"

train() { # run-dir
  "$ddpt" train "$src/configs/bert-tiny.ini" --run-dir "$1" --threads 1 \
    --set data.corpus="$dir/corpus" --set train.steps=300 --set train.batch_size=16 \
    --set log.every=10 --set log.eval_every=100 --set checkpoint.every=150 \
    --set optim.lr=2e-3 >"$1.out" 2>&1 || { cat "$1.out"; fail "ddpt train failed"; }
}
train "$dir/run1"
train "$dir/run2"

"$py" - "$dir/run1/metrics.jsonl" "$dir/run2/metrics.jsonl" "$dir/vocab.txt" <<'PY' || fail "metrics check failed"
import json, math, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
vocab = sum(1 for _ in open(sys.argv[3], encoding="utf-8"))
assert a, "no metrics lines"
assert a[-1]["step"] == 300, f"last logged step is {a[-1]['step']}, want 300"
first = a[0]["loss"]
last = sum(r["loss"] for r in a[-3:]) / 3
ln_v = math.log(vocab)
print(f"loss at step {a[0]['step']} {first:.3f}, mean of the last three logged {last:.3f} (ln V = {ln_v:.3f})")
assert a[0]["step"] == 1, "the first step is not logged"
assert abs(first - ln_v) < 0.5, f"first loss {first} is not near ln(V) = {ln_v}"
assert last < ln_v - 1.0, f"loss fell only from {first} to {last}"
evals = [r for r in a if "eval_loss" in r]
assert len(evals) >= 3, f"{len(evals)} evaluations, want 3 (steps 100, 200, 300)"
assert all(0 <= r["eval_accuracy"] <= 1 and r["eval_perplexity"] > 1 for r in evals)
assert evals[-1]["eval_accuracy"] > 0.03, f"eval accuracy {evals[-1]['eval_accuracy']}"
# The unigram baseline depends on the validation masks alone, which are fixed.
majority = {r["eval_majority_accuracy"] for r in evals}
assert len(majority) == 1 and 0 < min(majority) < 1, f"eval_majority_accuracy {majority}"
assert evals[-1]["eval_loss"] < ln_v - 1.0, f"eval loss {evals[-1]['eval_loss']}"
# Fields that measure time end in "_s" or "_frac" (trainer/metrics.h); all others are deterministic.
strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith(("_s", "_frac"))} for r in rows]
assert strip(a) == strip(b), "second identical run logged different figures"
print(f"{len(a)} metrics lines, {len(evals)} evaluations, identical across two runs")
PY
cmp -s "$dir/run1/config.ini" "$dir/run2/config.ini" || fail "config.ini differs between identical runs"
"$py" "$src/scripts/plot_metrics.py" "$dir/run1" >/dev/null || fail "plot_metrics.py failed"
[ -s "$dir/run1/metrics.png" ] || fail "no metrics.png"
echo "train_e2e: ok"
