#!/bin/sh
# Fine-tuning end to end on real text that Debian ships, as a user would do
# it: a bilingual vocab and a short pretraining on fortunes (English and
# Chinese), then on 2 ranks
#  1. topic classification: each fortune labelled by its file (five English,
#     two Chinese), --valid-fraction split; validation accuracy clearly above
#     the majority class, and `ddpt predict` over the validation texts (found
#     in the validation shard with plyvel) scores exactly what the
#     evaluation in report.json scored;
#  2. Chinese word segmentation: BMES tags from python3-jieba's segmentation
#     of fortunes-zh sentences, with the CRF; token accuracy and entity
#     (word) F1 clearly above tagging every character with the majority tag
#     or as a word of its own, and predict agreeing with the evaluation;
#  3. `ddpt export` of the classifier: a BertForSequenceClassification
#     directory whose config.json names the labels.
# Fixed files, seeds and order: the figures repeat run after run.
set -eu
ddpt=$1 mpirun=$2
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
src=$(dirname "$0")/..
start=$(date +%s)

# Fortunes without fortunes-zh's ANSI colours, one file per source; the
# classification examples (at most 120 per file, cut to 300 characters and
# then to the corpus's 64 tokens by --truncate) and a few held-out ones; the
# segmentation sentences (4-30 Han characters between punctuation).
"$py" - "$dir" <<'PY' || fail "preparing the text failed (are fortunes, fortunes-zh and python3-jieba installed? scripts/install-deps.sh)"
import os, random, re, sys
import jieba
d = sys.argv[1]
ansi = re.compile(r"\x1b\[[0-9;]*m")
def fortunes(name):
    text = ansi.sub("", open("/usr/share/games/fortunes/" + name, encoding="utf-8").read())
    return [f.strip() for f in re.split(r"(?m)^%\n", text) if f.strip()]
topics = ["computers", "food", "love", "science", "startrek", "song100", "tang300"]
os.mkdir(d + "/text")
texts = {name: fortunes(name) for name in topics + ["chinese"]}
for name, fs in texts.items():
    open("%s/text/%s" % (d, name), "w", encoding="utf-8").write("".join(f + "\n%\n" for f in fs))
with open(d + "/topics.tsv", "w", encoding="utf-8") as out, open(d + "/heldout.tsv", "w", encoding="utf-8") as held:
    for name in topics:
        fs = texts[name]
        picked = set(random.Random("topics " + name).sample(range(len(fs)), min(120, len(fs))))
        for i in sorted(picked):
            out.write("%s\t%s\n" % (name, " ".join(fs[i].split())[:300]))
        rest = [i for i in range(len(fs)) if i not in picked]
        if rest:
            held.write("%s\t%s\n" % (name, " ".join(fs[rest[len(rest) // 2]].split())[:300]))

han = re.compile(r"[\u4e00-\u9fff]{4,30}")
sents = sorted({s for name in ("chinese", "song100", "tang300") for f in texts[name]
                for s in re.split(r"[。！？，；：、\s]+", f) if han.fullmatch(s)})
random.Random("segmentation").shuffle(sents)
jieba.setLogLevel(60)
jieba.dt.tmp_dir = d  # its dictionary cache: nothing outside this test's folder
with open(d + "/cws.conll", "w", encoding="utf-8") as f:
    for s in sents[:1200]:
        tags = "".join("S" if len(w) == 1 else "B" + "M" * (len(w) - 2) + "E" for w in jieba.cut(s))
        assert len(tags) == len(s), s
        f.write("".join("%s %s\n" % c for c in zip(s, tags)) + "\n")
PY

"$ddpt" vocab --size 8000 --min-frequency 3 --out "$dir/vocab.txt" "$dir/text" >/dev/null || fail "ddpt vocab failed"
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/pre" --shards 2 --seq-len 64 --format fortune \
  --valid-fraction 0.02 --seed 1 "$dir/text" >/dev/null || fail "sharding the fortunes failed"
"$ddpt" shard --task classify --vocab "$dir/vocab.txt" --out "$dir/topics" --shards 2 --seq-len 64 --truncate \
  --valid-fraction 0.2 --seed 1 "$dir/topics.tsv" >/dev/null || fail "sharding the topics failed"
"$ddpt" shard --task tag --vocab "$dir/vocab.txt" --out "$dir/cws" --shards 2 --seq-len 32 --truncate \
  --valid-fraction 0.2 --seed 1 "$dir/cws.conll" >/dev/null || fail "sharding the segmentation failed"

mpi -np 2 "$ddpt" train "$src/configs/bert-tiny.ini" --run-dir "$dir/pre-run" --threads 1 \
  --set data.corpus="$dir/pre" --set train.steps=200 --set train.batch_size=16 --set optim.lr=2e-3 \
  --set log.every=50 --set log.eval_every=0 --set checkpoint.every=200 >"$dir/pre.out" 2>&1 ||
  { cat "$dir/pre.out"; fail "pretraining failed"; }
grep "^step [0-9]" "$dir/pre.out"

printf '[optim]\nlr = 1e-3\n[train]\nseed = 1\n' >"$dir/ft.ini"
finetune() { # name corpus steps options...
  name=$1 corpus=$2 steps=$3
  shift 3
  mpi -np 2 "$ddpt" finetune "$dir/ft.ini" --init "$dir/pre-run/ckpt-00000200.h5" --run-dir "$dir/$name" \
    --threads 1 --set data.corpus="$dir/$corpus" --set train.steps="$steps" --set train.batch_size=16 \
    --set log.every=50 --set log.eval_every="$steps" "$@" >"$dir/$name.out" 2>&1 ||
    { cat "$dir/$name.out"; fail "fine-tuning $name failed"; }
  grep "^step [0-9]\|^best:" "$dir/$name.out"
}
# (Measured over seeds: 300 steps for the topics, where 150 left some seeds
# near 0.35; more than 150 steps overfit the 960 sentences. The CRF learns
# its transitions only at a head_lr well above lr: 3e-2 gains ~0.1 F1.)
finetune cls topics 300
finetune tag cws 150 --set finetune.crf=true --set finetune.head_lr=3e-2

# The validation examples, in order: the validation shards' records (read
# with plyvel, as docs/corpus.md lays them out) matched in order against
# the inputs' `ddpt tokenize --ids`, label included.
"$py" - "$ddpt" "$dir" <<'PY' || fail "the validation shards do not match the inputs"
import json, struct, subprocess, sys
import plyvel
ddpt, d = sys.argv[1:]
def records(corpus):
    m = json.load(open("%s/%s/manifest.json" % (d, corpus)))
    dbs = [plyvel.DB("%s/%s/%s" % (d, corpus, s["name"]), create_if_missing=False) for s in m["valid_shards"]]
    n = sum(s["sequences"] for s in m["valid_shards"])
    out = []
    for j in range(n):  # sequence j is in shard j mod N under key j div N
        v = dbs[j % len(dbs)].get(struct.pack(">Q", j // len(dbs)))
        _, flags, k, _ = struct.unpack_from("<BBHH", v, 0)
        assert m["id_bytes"] == 2 and flags & 0x18
        ids = list(struct.unpack_from("<%dH" % k, v, 6))
        labels = list(struct.unpack_from("<%dh" % (len(v) - 6 - 2 * k >> 1), v, 6 + 2 * k))
        out.append((ids[1:-1], [m["labels"][x] for x in labels if x >= 0]))
    return out
def tokenize(texts):
    p = subprocess.run([ddpt, "tokenize", "--vocab", d + "/vocab.txt", "--ids", "--threads", "1"],
                       input="".join(t + "\n" for t in texts), capture_output=True, text=True, check=True)
    return [[int(x) for x in l.split()] for l in p.stdout.split("\n")[:len(texts)]]
def match(corpus, examples, room, out):  # examples: (text, labels, line to write)
    recs, k = records(corpus), 0
    with open(out, "w", encoding="utf-8") as f:
        for (text, labels, line), ids in zip(examples, tokenize([e[0] for e in examples])):
            if k < len(recs) and recs[k] == (ids[:room], labels[:len(recs[k][1])]):
                f.write(line)
                k += 1
    assert k == len(recs), "%s: %d of %d validation records found in the input" % (corpus, k, len(recs))
    print("finetune_e2e: %s: the %d validation examples found in the input" % (corpus, k))
rows = [l.rstrip("\n").split("\t") for l in open(d + "/topics.tsv", encoding="utf-8")]
match("topics", [(t, [lab], "%s\t%s\n" % (lab, t)) for lab, t in rows], 62, d + "/topics.valid.tsv")
sents, cur = [], []
for l in open(d + "/cws.conll", encoding="utf-8"):
    if l.strip():
        cur.append(l.split())
    else:
        sents.append(cur)
        cur = []
match("cws", [("".join(c for c, _ in s), [t for _, t in s], "".join(c for c, _ in s) + "\t" + " ".join(t for _, t in s) + "\n")
              for s in sents], 30, d + "/cws.valid.tsv")
PY

cut -f2 "$dir/topics.valid.tsv" >"$dir/topics.valid.txt"
"$ddpt" predict --ckpt "$dir/cls/ckpt-00000300.h5" --seq-len 64 --json "$dir/topics.valid.txt" >"$dir/cls.jsonl" ||
  fail "predict (classify) failed"
cut -f2 "$dir/heldout.tsv" >"$dir/heldout.txt"
"$ddpt" predict --ckpt "$dir/cls/ckpt-00000300.h5" --seq-len 64 --top-k 2 "$dir/heldout.txt" >"$dir/heldout.out" ||
  fail "predict (held-out fortunes) failed"
cut -f1 "$dir/cws.valid.tsv" >"$dir/cws.valid.txt"
"$ddpt" predict --ckpt "$dir/tag/ckpt-00000150.h5" --seq-len 32 --json "$dir/cws.valid.txt" >"$dir/tag.jsonl" ||
  fail "predict (tag) failed"
"$ddpt" predict --ckpt "$dir/tag/ckpt-00000150.h5" --seq-len 32 "$dir/cws.valid.txt" >"$dir/tag.out" ||
  fail "predict (tag, text) failed"
"$ddpt" export "$dir/cls/ckpt-00000300.h5" --out "$dir/hf" >/dev/null || fail "ddpt export failed"

"$py" - "$dir" <<'PY' || fail "a check failed"
import json, sys
d = sys.argv[1]
def lines(p):
    return [l.rstrip("\n") for l in open(d + "/" + p, encoding="utf-8")]
summary = []

# 1. topics: the evaluation against the majority class, predict against the evaluation
m = json.load(open(d + "/topics/manifest.json"))
rep = json.load(open(d + "/cls/report.json"))
ev, labels = rep["final"], m["labels"]
counts = m["label_counts"]["valid"]
majority = max(counts) / sum(counts)
gold = [l.split("\t")[0] for l in lines("topics.valid.tsv")]
got = [json.loads(l) for l in lines("cls.jsonl")]
assert rep["task"] == "classify" and rep["labels"] == labels and ev["step"] == 300
assert ev["total"] == sum(counts) == len(gold) == len(got), (ev["total"], sum(counts), len(gold), len(got))
assert all(p["label"] in labels for p in got)
correct = sum(g == p["label"] for g, p in zip(gold, got))
f1s = []
for c in labels:
    tp = sum(g == c == p["label"] for g, p in zip(gold, got))
    fp, fn = sum(p["label"] == c for p in got) - tp, gold.count(c) - tp
    f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
print("finetune_e2e: topics: %d validation fortunes, %d labels %s; majority class %s %.3f"
      % (ev["total"], len(labels), " ".join(labels), labels[counts.index(max(counts))], majority))
print("finetune_e2e: topics: evaluation accuracy %.4f (%d/%d), macro-F1 %.4f; predict %d/%d, macro-F1 %.4f"
      % (ev["accuracy"], ev["correct"], ev["total"], ev["macro_f1"], correct, len(gold), sum(f1s) / len(f1s)))
# (The Chinese files and startrek come out nearly perfect; the other four
# English topics stay near chance for a model pretrained this briefly: over
# 4 seeds the English fortunes alone scored 0.35-0.50 against their own
# majority class's 0.22-0.28, shown here but too close to assert on.)
en = [labels.index(c) for c in ("computers", "food", "love", "science", "startrek")]
conf = ev["confusion"]
en_total = sum(sum(conf[i]) for i in en)
print("finetune_e2e: topics: per-class F1 %s; the English fortunes alone %.3f, their majority class %.3f"
      % (" ".join("%s %.2f" % (c, ev["per_class"][c]["f1"]) for c in labels),
         sum(conf[i][i] for i in en) / en_total, max(sum(conf[i]) for i in en) / en_total))
for text, out in zip(lines("heldout.tsv"), lines("heldout.out")):
    label, t = text.split("\t")
    print("  held-out %-9s -> %-30s %s" % (label, out, t[:50]))
    assert all(x.rsplit(":", 1)[0] in labels for x in out.split("\t")), out
assert correct == ev["correct"], "predict: %d correct, the evaluation %d" % (correct, ev["correct"])
assert abs(sum(f1s) / len(f1s) - ev["macro_f1"]) < 1e-9, (sum(f1s) / len(f1s), ev["macro_f1"])
# (Over 8 seeds of training and split: accuracy 0.52-0.65 against 0.17-0.21,
# macro-F1 0.54-0.64 against 0.04-0.05.)
majority_f1 = 2 * majority / (1 + majority) / len(labels)  # one class: precision = its share, recall 1
summary.append(("topics (7 classes)", "accuracy", ev["accuracy"], "majority class", majority))
summary.append(("topics (7 classes)", "macro-F1", ev["macro_f1"], "majority class", majority_f1))
assert ev["accuracy"] >= majority + 0.2 and ev["accuracy"] >= 2 * majority, \
    "accuracy %.3f is not clearly above the majority class's %.3f (+0.2, x2)" % (ev["accuracy"], majority)
assert ev["macro_f1"] >= majority_f1 + 0.25, "macro-F1 %.3f is not clearly above %.3f (+0.25)" % (ev["macro_f1"], majority_f1)

# 2. segmentation: token accuracy against the majority tag, word F1 against
# every character a word (all S: the gold words of one character are right)
m = json.load(open(d + "/cws/manifest.json"))
rep = json.load(open(d + "/tag/report.json"))
ev, tags = rep["final"], m["labels"]
assert rep["task"] == "tag" and tags == ["B", "E", "M", "S"] and rep["best_metric"] == "entity_f1" and ev["step"] == 150
counts = dict(zip(tags, m["label_counts"]["valid"]))
n, words = sum(counts.values()), counts["B"] + counts["S"]
majority = max(counts.values()) / n
all_s = 2 * counts["S"] / (n + words)
rows = [l.split("\t") for l in lines("cws.valid.tsv")]
got = [json.loads(l) for l in lines("tag.jsonl")]
assert ev["tokens"] == n == sum(len(g.split()) for _, g in rows) and ev["gold_chunks"] == words
right = sum(a == b for (_, g), p in zip(rows, got) for a, b in zip(g.split(), p["tags"]))
def words_of(tags):  # jieba's words: B M* E or S
    out, start = set(), 0
    for i, t in enumerate(tags):
        if t in "BS":
            start = i
        if t in "ES":
            out.add((start, i + 1))
    return out
gold_w = [words_of(g.split()) for _, g in rows]
pred_w = [{(x["start"], x["end"]) for x in p["spans"]} for p in got]
ok_w = sum(len(a & b) for a, b in zip(gold_w, pred_w))
f1 = 2 * ok_w / (sum(map(len, gold_w)) + sum(map(len, pred_w)))
assert all(len(p["tags"]) == len(s) and set(p["tags"]) <= set(tags) for (s, _), p in zip(rows, got))
print("finetune_e2e: segmentation: %d validation sentences, %d characters, %d words; majority tag %.3f, all S word F1 %.3f"
      % (len(rows), n, words, majority, all_s))
print("finetune_e2e: segmentation: evaluation token accuracy %.4f, word P/R/F1 %.4f/%.4f/%.4f; predict %d/%d tags right, word F1 %.4f"
      % (ev["token_accuracy"], ev["precision"], ev["recall"], ev["f1"], right, n, f1))
for (s, g), out in list(zip(rows, lines("tag.out")))[:4]:
    print("  %s\n    jieba   %s\n    predict %s" % (s, g, out))
assert right == round(ev["token_accuracy"] * n), "predict: %d tags right, the evaluation %.0f" % (right, ev["token_accuracy"] * n)
assert abs(f1 - ev["f1"]) < 1e-9, "predict's spans: word F1 %.6f, the evaluation %.6f" % (f1, ev["f1"])
# (Over 6 seeds: token accuracy 0.68-0.73 against 0.35-0.37, word F1
# 0.60-0.67 against 0.23-0.28.)
summary.append(("segmentation (CRF)", "token accuracy", ev["token_accuracy"], "majority tag", majority))
summary.append(("segmentation (CRF)", "word F1", ev["f1"], "every char a word", all_s))
assert ev["token_accuracy"] >= majority + 0.2, \
    "token accuracy %.3f is not clearly above the majority tag's %.3f (+0.2)" % (ev["token_accuracy"], majority)
assert ev["f1"] >= all_s + 0.2, "word F1 %.3f is not clearly above every character a word's %.3f (+0.2)" % (ev["f1"], all_s)

# 3. the exported classifier
cfg = json.load(open(d + "/hf/config.json"))
labels = json.load(open(d + "/topics/manifest.json"))["labels"]
assert cfg["architectures"] == ["BertForSequenceClassification"], cfg["architectures"]
assert cfg["id2label"] == {str(i): l for i, l in enumerate(labels)}, cfg["id2label"]
print("finetune_e2e: export: %s with id2label %s" % (cfg["architectures"][0], " ".join(cfg["id2label"].values())))

print("\n%-20s %-15s %7s   %s" % ("task", "metric", "value", "baseline"))
for task, metric, value, base, b in summary:
    print("%-20s %-15s %7.4f   %.4f (%s)" % (task, metric, value, b, base))
PY
echo "finetune_e2e: ok ($(($(date +%s) - start)) s)"
