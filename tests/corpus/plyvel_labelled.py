#!/usr/bin/python3
"""Labelled corpora through the ddpt executable, read back with plyvel from
the record format in docs/corpus.md alone ("Labelled corpora"):

- classify: fortunes labelled by their file (science, computers, food),
  some as pairs, training from TSV and validation from JSON lines (--valid,
  format by extension); every record holds [CLS] a [SEP] (b [SEP]) with
  exactly `ddpt tokenize`'s ids, truncated as HuggingFace's longest_first,
  and the label named in the manifest;
- tag: fortune lines as CoNLL sentences, each word tagged by a rule; each
  word's pieces are `ddpt tokenize` of that word alone, the first piece
  carries the tag and the others -100 (or the tag, --label-all-pieces);
- the manifest's label_counts are the records' counts; `ddpt corpus
  verify/info/sample` work on both, and verify finds a label id beyond the
  manifest's labels; bad input fails with one line naming file:line and
  leaves no corpus.

usage: plyvel_labelled.py DDPT_BIN"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import plyvel

SEQ_LEN, SHARDS = 24, 3
TOPICS = ["science", "computers", "food"]
IGNORE = -100


def run(*args, ok=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if ok and p.returncode != 0:
        raise SystemExit(f"FAIL plyvel_labelled: {' '.join(args)}: {p.stderr.strip()}")
    return p


def tokenize(ddpt, vocab, lines, root):
    """ddpt tokenize --ids of each line, as lists of ids."""
    path = os.path.join(root, "tok-in.txt")
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    out = run(ddpt, "tokenize", "--vocab", vocab, "--ids", path).stdout.split("\n")
    return [[int(x) for x in out[i].split()] for i in range(len(lines))]


def longest_first(a, b, room):
    """HuggingFace's truncate_sequences, TruncationStrategy.LONGEST_FIRST."""
    a, b = list(a), list(b) if b is not None else None
    while len(a) + (len(b) if b is not None else 0) > room:
        if b is None or len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def read_records(corpus, m, names):
    """{name: [(flags, ids, split, labels)]} for each shard name, via plyvel."""
    out = {}
    for name in names:
        db = plyvel.DB(os.path.join(corpus, name), create_if_missing=False)
        recs = []
        for i, (key, value) in enumerate(db):
            assert key == struct.pack(">Q", i), f"{name}: key {key.hex()} at {i}"
            version, flags, n, split = struct.unpack_from("<BBHH", value, 0)
            width = m["id_bytes"]
            assert version == 1 and (flags & 0x04 != 0) == (width == 4)
            ids = list(struct.unpack_from("<%d%s" % (n, "H" if width == 2 else "I"), value, 6))
            tail = value[6 + n * width:]
            if flags & 0x08:
                assert len(tail) == 2, f"{name}/{i}: class record with {len(tail)} label bytes"
                labels = struct.unpack("<h", tail)[0]
            elif flags & 0x10:
                assert len(tail) == 2 * n, f"{name}/{i}: tag record with {len(tail)} label bytes"
                labels = list(struct.unpack("<%dh" % n, tail))
            else:
                raise AssertionError(f"{name}/{i}: flags {flags:#x} carry no labels")
            recs.append((flags, ids, split, labels))
        db.close()
        out[name] = recs
    return out


def fortunes(topic, count, skip=0):
    """count one-line fortunes (stripped, tab-free, with letters) of a file."""
    lines = []
    with open(f"/usr/share/games/fortunes/{topic}", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip().replace("\t", " ")
            if len(line) > 3 and line != "%" and any(c.isalpha() for c in line):
                lines.append(line)
    return lines[skip:skip + count]


def check_classify(ddpt, vocab, root):
    train, dev = [], []
    for t, topic in enumerate(TOPICS):
        lines = fortunes(topic, 60)
        for i in range(0, 40, 2):
            pair = (i // 2) % 3 == 0
            train.append((topic, lines[i], lines[i + 1] if pair else None))
        for i in range(40, 60, 4):
            dev.append((topic, lines[i], None))
    train.sort(key=lambda e: e[1])  # topics interleaved
    with open(os.path.join(root, "train.tsv"), "w") as f:
        for label, a, b in train:
            f.write(f"{label}\t{a}" + (f"\t{b}" if b else "") + "\n")
    with open(os.path.join(root, "dev.jsonl"), "w") as f:
        for label, a, _ in dev:
            f.write(json.dumps({"text": a, "label": label, "id": len(a)}) + "\n")
    corpus = os.path.join(root, "classify")
    run(ddpt, "shard", "--task", "classify", "--vocab", vocab, "--out", corpus, "--shards",
        str(SHARDS), "--seq-len", str(SEQ_LEN), "--truncate", "--valid",
        os.path.join(root, "dev.jsonl"), os.path.join(root, "train.tsv"))
    m = json.load(open(os.path.join(corpus, "manifest.json")))
    assert m["task"] == "classify" and m["labels"] == sorted(TOPICS), m["labels"]
    assert m["input_format"] == "tsv+jsonl", m["input_format"]
    cls, sep = m["vocab"]["cls_id"], m["vocab"]["sep_id"]
    shards = read_records(corpus, m, [s["name"] for s in m["shards"]])
    valid = read_records(corpus, m, [s["name"] for s in m["valid_shards"]])["valid-00000"]
    got = [shards[f"shard-{j % SHARDS:05d}"][j // SHARDS] for j in range(len(train))]
    texts = [e[1] for e in train] + [e[2] for e in train if e[2]] + [e[1] for e in dev]
    ids = dict(zip(texts, tokenize(ddpt, vocab, texts, root)))
    counts = {"train": [0] * 3, "valid": [0] * 3}
    truncated = 0
    for split, examples, records in (("train", train, got), ("valid", dev, valid)):
        assert len(records) == len(examples)
        for (label, a, b), (flags, rec, cut, lab) in zip(examples, records):
            room = SEQ_LEN - (3 if b else 2)
            ta, tb = longest_first(ids[a], ids[b] if b else None, room)
            truncated += len(ta) + len(tb or []) < len(ids[a]) + len(ids[b] if b else [])
            want = [cls] + ta + [sep] + (tb + [sep] if b else [])
            assert rec == want, f"{label} {a!r}: {rec} != {want}"
            assert cut == len(ta) + 2 and bool(flags & 0x01) == bool(b)
            assert m["labels"][lab] == label
            counts[split][lab] += 1
    assert m["label_counts"] == counts, (m["label_counts"], counts)
    assert m["truncated"] == truncated and truncated > 0, (m["truncated"], truncated)
    out = run(ddpt, "corpus", "verify", corpus).stdout
    assert ": ok" in out, out
    info = run(ddpt, "corpus", "info", corpus).stdout
    assert "task:         classify, labels: computers food science" in info, info
    steps = run(ddpt, "corpus", "sample", "--world", "3", "--rank", "1", "--batch", "4",
                "--steps", "2", corpus).stdout.splitlines()
    assert len(steps) == 2 and all(x.split(":")[0] == "1" for x in steps[0].split()[2:]), steps
    # A manifest with fewer labels than the records use: verify names the record.
    m["labels"] = m["labels"][:2]
    m["label_counts"] = {k: v[:2] for k, v in m["label_counts"].items()}
    json.dump(m, open(os.path.join(corpus, "manifest.json"), "w"))
    p = run(ddpt, "corpus", "verify", corpus, ok=False)
    assert p.returncode == 1 and "is not below the 2 labels" in p.stderr, p.stderr
    return len(got), len(valid)


def tag_of(word):
    return "B-CAP" if word[0].isupper() else "NUM" if word[0].isdigit() else "O"


def check_tag(ddpt, vocab, root, label_all):
    sentences = [l.split() for l in fortunes("computers", 50, skip=100)]
    with open(os.path.join(root, "tags.conll"), "w") as f:
        f.write("-DOCSTART- -X- O\n\n")
        for words in sentences:
            f.write("".join(f"{w} {tag_of(w)}\n" for w in words) + "\n\n")
    corpus = os.path.join(root, "tag")
    args = [ddpt, "shard", "--task", "tag", "--vocab", vocab, "--out", corpus, "--shards", "2",
            "--seq-len", str(SEQ_LEN), "--truncate", "--overwrite"]
    run(*(args + (["--label-all-pieces"] if label_all else []) + [os.path.join(root, "tags.conll")]))
    m = json.load(open(os.path.join(corpus, "manifest.json")))
    assert m["task"] == "tag" and m["label_all_pieces"] == label_all
    labels = m["labels"]
    assert labels == sorted({tag_of(w) for s in sentences for w in s}), labels
    unk, cls, sep = m["vocab"]["unk_id"], m["vocab"]["cls_id"], m["vocab"]["sep_id"]
    words = sorted({w for s in sentences for w in s})
    pieces = dict(zip(words, tokenize(ddpt, vocab, words, root)))
    shards = read_records(corpus, m, [s["name"] for s in m["shards"]])
    counts = [0] * len(labels)
    for j, sent in enumerate(sentences):
        flags, ids, split, tags = shards[f"shard-{j % 2:05d}"][j // 2]
        want_ids, want_tags = [cls], [IGNORE]
        for w in sent:
            p = pieces[w] or [unk]
            t = labels.index(tag_of(w))
            want_ids += p
            want_tags += [t] + [t if label_all else IGNORE] * (len(p) - 1)
        want_ids = want_ids[:SEQ_LEN - 1] + [sep]
        want_tags = want_tags[:SEQ_LEN - 1] + [IGNORE]
        assert ids == want_ids and tags == want_tags, f"sentence {j}: {ids}/{tags} != {want_ids}/{want_tags}"
        assert split == len(ids) and flags & 0x01 == 0
        for t in tags:
            if t != IGNORE:
                counts[t] += 1
    assert m["label_counts"]["train"] == counts, (m["label_counts"], counts)
    assert ": ok" in run(ddpt, "corpus", "verify", corpus).stdout
    return len(sentences)


def check_errors(ddpt, vocab, root):
    bad = os.path.join(root, "bad.tsv")
    with open(bad, "w") as f:
        f.write("science\tThe sun is hot.\nfood\tSoup.\nno tab here\n")
    out = os.path.join(root, "bad-corpus")
    p = run(ddpt, "shard", "--task", "classify", "--vocab", vocab, "--out", out, "--shards", "1",
            "--seq-len", "16", bad, ok=False)
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0 and len(lines) == 1 and f"{bad}:3: 1 tab-separated field" in lines[0], p.stderr
    assert not os.path.exists(out)
    labels = os.path.join(root, "labels.txt")
    with open(labels, "w") as f:
        f.write("science\n")
    p = run(ddpt, "shard", "--task", "classify", "--vocab", vocab, "--out", out, "--shards", "1",
            "--seq-len", "16", "--labels", labels, bad, ok=False)
    assert p.returncode != 0 and f"{bad}:2: label \"food\" is not in the label set" in p.stderr, p.stderr
    assert not os.path.exists(out)
    with open(bad, "w") as f:
        f.write("science\tThe sun is hot, very hot, hotter than anything on earth is.\n")
    p = run(ddpt, "shard", "--task", "classify", "--vocab", vocab, "--out", out, "--shards", "1",
            "--seq-len", "8", bad, ok=False)
    assert p.returncode != 0 and f"{bad}:1: the text gives" in p.stderr and "--truncate" in p.stderr, p.stderr
    assert not os.path.exists(out)


def main(ddpt):
    root = tempfile.mkdtemp(prefix="ddpt-plyvel-labelled-")
    try:
        vocab = os.path.join(root, "vocab.txt")
        run(ddpt, "vocab", "--size", "3000", "--out", vocab,
            *[f"/usr/share/games/fortunes/{t}" for t in TOPICS])
        ntrain, nvalid = check_classify(ddpt, vocab, root)
        nsent = check_tag(ddpt, vocab, root, False)
        check_tag(ddpt, vocab, root, True)
        check_errors(ddpt, vocab, root)
        print(f"plyvel_labelled: ok ({ntrain} training and {nvalid} validation examples, "
              f"{nsent} tagged sentences match ddpt tokenize and the labels)")
    finally:
        shutil.rmtree(root)


main(sys.argv[1])
