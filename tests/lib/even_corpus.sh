#!/bin/sh
# Makes DIR/corpus: 12 shards of exactly 40 sequences each (480 documents of
# 30 one-token words; with seq_len 32 each is one [CLS] ... [SEP] sequence),
# so that every world size that divides 12 reads the same samples per step.
# usage: even_corpus.sh DDPT DIR
set -eu
ddpt=$1 dir=$2
/usr/bin/python3 - "$dir" <<'PY'
import random, sys
d = sys.argv[1]
words = ["w%03d" % i for i in range(200)]
with open(d + "/vocab.txt", "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
rng = random.Random(7)
with open(d + "/text.txt", "w") as f:
    for _ in range(480):
        f.write(" ".join(rng.choice(words) for _ in range(30)) + "\n")
PY
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/corpus" --shards 12 --seq-len 32 --format lines \
  --seed 1 "$dir/text.txt" >/dev/null
