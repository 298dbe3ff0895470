#!/usr/bin/python3
"""The quickstart's pretraining text (scripts/quickstart_helper.py fortunes):
its validation documents are held out before English is repeated, so no copy
of one is trained on; every document of the fortunes is in one of the two
parts; each English training file is there ENGLISH_WEIGHT times, the Chinese
ones once; and ddpt shard --valid makes exactly those documents the split.

usage: split.py DDPT"""
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import quickstart_helper as qh  # noqa: E402


def docs_of(path):
    return qh.split_docs(open(path, encoding="utf-8").read(), "fortune")


def main(ddpt):
    with tempfile.TemporaryDirectory() as out:
        if qh.fortunes(out) != 0:
            return 1
        text = {n: docs_of(os.path.join(out, "text", n)) for n in os.listdir(os.path.join(out, "text"))}
        valid = {n: docs_of(os.path.join(out, "split", "valid", n)) for n in text}
        train = collections.Counter()
        copies = collections.Counter()
        for name in os.listdir(os.path.join(out, "split", "train")):
            base = name.split(".")[0]
            copies[base] += 1
            train.update(docs_of(os.path.join(out, "split", "train", name)))
        held = [d for n in valid for d in valid[n]]
        trained_on = [d for d in held if d in train]
        assert not trained_on, "%d validation documents are also trained on, e.g. %r" % (
            len(trained_on), trained_on[0][:60])
        for name, docs in text.items():
            want = qh.ENGLISH_WEIGHT if name in qh.ENGLISH else 1
            assert copies[name] == want, "%s: %d training copies, want %d" % (name, copies[name], want)
            for d in docs:
                assert d in valid[name] or train[d] >= want, "%s: a document is in neither part" % name
        share = len(held) / sum(len(d) for d in text.values())
        assert 0.01 < share < 0.03, "%.4f of the documents held out, want about %.2f" % (share, qh.VALID_FRACTION)
        # The corpus the quickstart shards: its validation split is the held-out text.
        vocab = os.path.join(out, "vocab.txt")
        subprocess.run([ddpt, "vocab", "--size", "8000", "--min-frequency", "3", "--out", vocab, os.path.join(out, "text")],
                       check=True, stdout=subprocess.DEVNULL)
        corpus = os.path.join(out, "corpus")
        subprocess.run([ddpt, "shard", "--vocab", vocab, "--out", corpus, "--shards", "2", "--seq-len", "64",
                        "--format", "fortune", "--valid", os.path.join(out, "split", "valid"),
                        os.path.join(out, "split", "train")], check=True, stdout=subprocess.DEVNULL)
        m = json.load(open(os.path.join(corpus, "manifest.json")))
        assert m["valid_shards"], "no validation shard"
        print("held out %d of %d documents (%.2f%%); English %dx, Chinese 1x; %d validation sequences"
              % (len(held), sum(len(d) for d in text.values()), 100 * share, qh.ENGLISH_WEIGHT,
                 m["valid_shards"][0]["sequences"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
