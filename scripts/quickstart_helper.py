#!/usr/bin/python3
"""The text scripts/quickstart.sh trains on, and the figures it ends with.

usage: quickstart_helper.py fortunes OUT_DIR
       quickstart_helper.py mixing OUT_DIR
       quickstart_helper.py topics TEXT_DIR FORMAT OUT_DIR
       quickstart_helper.py mlm RUN_DIR MIN_RATIO
       quickstart_helper.py classifier CORPUS RUN_DIR
       ddpt fill-mask --json ... | quickstart_helper.py fill TEXT

fortunes: OUT_DIR/text/, the default corpus: Debian's English fortunes and
  fortunes-zh (ANSI colour codes stripped), one file per source, fortune
  format (the vocab is trained on it); what pretraining reads, in OUT_DIR/split/:
  valid/, VALID_FRACTION of each file's documents held out, and train/, the
  rest, each English file ENGLISH_WEIGHT times (NAME, NAME.2, ...): held out
  before repeating, so no copy of a validation document is trained on; and
  the labelled topic set (below) from seven of those files.
mixing: says how often pretraining sees each file of OUT_DIR/split/train.
topics: the labelled topic set of a user's own text: each file of TEXT_DIR
  with at least MIN_DOCS documents (FORMAT lines|docs|fortune, as ddpt shard
  splits them) is a topic. Exits 3, saying why, when fewer than two qualify.
  The topic set: OUT_DIR/topics.tsv (label<TAB>text, at most PER_TOPIC texts
  per topic cut to 300 characters: the classifier's training and validation
  examples) and OUT_DIR/examples.tsv (one more text per topic, in neither,
  for `ddpt predict`). Fixed seeds: the same files give the same sets.
mlm: the last evaluation of a pretraining run against always answering the
  most frequent masked token; exits 1 when the ratio is below MIN_RATIO.
classifier: a fine-tuning run's final validation accuracy against always
  answering the validation split's most frequent label.
fill: one line per [MASK] of TEXT: the answers of `ddpt fill-mask --json`
  (read from standard input) and their probabilities."""
import collections
import json
import os
import random
import re
import sys

FORTUNES = "/usr/share/games/fortunes/"
# English files of general prose (no ASCII art, no offensive set) and the
# three Chinese ones. The topics are tests/finetune_e2e.sh's: five English
# and two Chinese files whose texts differ enough to be told apart.
ENGLISH = ["computers", "science", "people", "politics", "work", "wisdom", "literature",
           "education", "love", "food", "startrek", "humorists", "miscellaneous", "linux"]
CHINESE = ["chinese", "tang300", "song100"]
TOPICS = ["computers", "food", "love", "science", "startrek", "song100", "tang300"]
# English is about 330 000 of the text's 870 000 tokens: pretraining sees each
# English training document this many times, the Chinese ones once
# (docs/quickstart.md measured 1, 2 and 3).
ENGLISH_WEIGHT = 3
VALID_FRACTION = 0.02
PER_TOPIC = 120
MIN_DOCS = 20
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def split_docs(text, fmt):
    """The documents of one file, split as ddpt shard --format FMT splits them."""
    if fmt == "fortune":
        parts = re.split(r"(?m)^%\n", text)
    elif fmt == "docs":
        parts = re.split(r"\n\s*\n", text)
    else:
        parts = text.split("\n")
    return [p.strip() for p in parts if p.strip()]


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return ANSI.sub("", f.read())


def write_topics(docs_by_topic, out_dir):
    with open(os.path.join(out_dir, "topics.tsv"), "w", encoding="utf-8") as out, \
         open(os.path.join(out_dir, "examples.tsv"), "w", encoding="utf-8") as held:
        for name, docs in docs_by_topic.items():
            label = re.sub(r"\s+", "_", name)
            picked = set(random.Random("topics " + name).sample(range(len(docs)), min(PER_TOPIC, len(docs))))
            for i in sorted(picked):
                out.write("%s\t%s\n" % (label, " ".join(docs[i].split())[:300]))
            rest = [i for i in range(len(docs)) if i not in picked]
            if rest:
                held.write("%s\t%s\n" % (label, " ".join(docs[rest[len(rest) // 2]].split())[:300]))


def write_fortune_file(path, docs):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(d + "\n%\n" for d in docs))


def write_split(docs_by_file, out_dir):
    """OUT_DIR/split/valid and split/train (English weighted), by document."""
    for part in ("train", "valid"):
        os.makedirs(os.path.join(out_dir, "split", part), exist_ok=True)
    for name, docs in docs_by_file.items():
        # Drawn from the document's text: a fortune found twice (18 are, in
        # two files or one) is held out everywhere or nowhere.
        held = [random.Random("valid " + d).random() < VALID_FRACTION for d in docs]
        write_fortune_file(os.path.join(out_dir, "split", "valid", name), [d for d, h in zip(docs, held) if h])
        train = [d for d, h in zip(docs, held) if not h]
        for copy in range(ENGLISH_WEIGHT if name in ENGLISH else 1):
            suffix = ".%d" % (copy + 1) if copy else ""
            write_fortune_file(os.path.join(out_dir, "split", "train", name + suffix), train)


def fortunes(out_dir):
    os.makedirs(os.path.join(out_dir, "text"), exist_ok=True)
    docs = {}
    for name in ENGLISH + CHINESE:
        try:
            docs[name] = split_docs(read(FORTUNES + name), "fortune")
        except OSError as e:
            print("quickstart: cannot read %s%s (%s): install fortunes and fortunes-zh "
                  "(scripts/install-deps.sh)" % (FORTUNES, name, e.strerror), file=sys.stderr)
            return 1
        write_fortune_file(os.path.join(out_dir, "text", name), docs[name])
    write_split(docs, out_dir)
    write_topics({name: docs[name] for name in TOPICS}, out_dir)
    return 0


def mixing(out_dir):
    train = os.path.join(out_dir, "split", "train")
    copies = collections.Counter(re.sub(r"\.\d+$", "", name) for name in os.listdir(train))
    weights = collections.defaultdict(list)
    for name, n in sorted(copies.items()):
        weights[n].append(name)
    print("mixing weight (%s): %s" % (train, "; ".join(
        "%dx %s" % (n, ", ".join(names)) for n, names in sorted(weights.items(), reverse=True))))
    print("validation: %s/split/valid, %.0f%% of each file's documents held out before the repeating, "
          "each once" % (out_dir, 100 * VALID_FRACTION))
    return 0


def own_topics(text_dir, fmt, out_dir):
    docs = {}
    for root, dirs, files in os.walk(text_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = os.path.join(root, name)
            found = split_docs(read(path), fmt)
            if len(found) >= MIN_DOCS:
                docs[os.path.relpath(path, text_dir)] = found
    if len(docs) < 2:
        print("quickstart: %s has %d file(s) of at least %d documents (--format %s); a topic classifier "
              "needs two or more, one topic per file" % (text_dir, len(docs), MIN_DOCS, fmt), file=sys.stderr)
        return 3
    os.makedirs(out_dir, exist_ok=True)
    write_topics(docs, out_dir)
    return 0


def mlm(run_dir, min_ratio):
    path = os.path.join(run_dir, "metrics.jsonl")
    with open(path) as f:
        evals = [r for r in map(json.loads, f) if "eval_majority_accuracy" in r]
    if not evals:
        print("quickstart: %s has no evaluation: was the run trained with [log] eval_every > 0?" % path,
              file=sys.stderr)
        return 1
    e = evals[-1]
    ratio = e["eval_accuracy"] / e["eval_majority_accuracy"]
    print("MLM accuracy on the validation split after step %d: %.4f (loss %.3f)" % (e["step"], e["eval_accuracy"],
                                                                                   e["eval_loss"]))
    print("always the most frequent masked token:             %.4f" % e["eval_majority_accuracy"])
    print("ratio: %.2fx (at least %.1fx wanted)" % (ratio, min_ratio))
    if ratio < min_ratio:
        print("quickstart: the model did not clearly leave the unigram plateau (%.2fx < %.1fx); see %s"
              % (ratio, min_ratio, path), file=sys.stderr)
        return 1
    return 0


def classifier(corpus, run_dir):
    labels = json.load(open(os.path.join(corpus, "manifest.json")))
    counts = labels["label_counts"]["valid"]
    final = json.load(open(os.path.join(run_dir, "report.json")))["final"]
    majority = labels["labels"][counts.index(max(counts))]
    print("topic classifier, validation accuracy: %.4f (%d/%d), macro-F1 %.4f" % (
        final["accuracy"], final["correct"], final["total"], final["macro_f1"]))
    print("always the most frequent topic (%s):    %.4f" % (majority, max(counts) / sum(counts)))
    return 0


def fill(text):
    answer = sys.stdin.read()
    if not answer.strip():
        return 1  # fill-mask failed and said why on stderr
    for m in json.loads(answer)["masks"]:
        print("  %-44s %s" % (text, "  ".join("%s %.2f" % (p["token"], p["prob"]) for p in m["predictions"])))
    return 0


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if cmd == "fortunes" and len(args) == 1:
        return fortunes(args[0])
    if cmd == "mixing" and len(args) == 1:
        return mixing(args[0])
    if cmd == "topics" and len(args) == 3 and args[1] in ("lines", "docs", "fortune"):
        return own_topics(*args)
    if cmd == "mlm" and len(args) == 2:
        return mlm(args[0], float(args[1]))
    if cmd == "classifier" and len(args) == 2:
        return classifier(*args)
    if cmd == "fill" and len(args) == 1:
        return fill(args[0])
    print("\n".join(__doc__.splitlines()[2:8]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
