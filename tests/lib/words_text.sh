#!/bin/sh
# Writes DIR/vocab.txt (the five specials and 200 words w000..w199) and
# DIR/text.txt: 480 one-line documents of 30 words drawn with seed 7, so
# that every run of a test shards the same text.
# usage: words_text.sh DIR
set -eu
/usr/bin/python3 - "$1" <<'PY'
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
