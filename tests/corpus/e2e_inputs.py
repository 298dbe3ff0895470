#!/usr/bin/python3
"""`ddpt vocab DIR` and `ddpt shard DIR` read the same files: a tree whose
dot-files and dot-directories hold characters found nowhere else is given
to both; the vocab must lack those characters (vocab read none of them) and
the corpus must hold exactly the visible files' bytes with no [UNK] under
that vocab (shard read none of them either). Naming a dot-file reads it.

usage: e2e_inputs.py DDPT_BIN"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args):
    p = subprocess.run([DDPT, *args], capture_output=True, text=True)
    if p.returncode != 0:
        print("command failed:", " ".join(args), p.stderr)
        sys.exit(1)
    return p


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.path.getsize(path)


def main():
    root = tempfile.mkdtemp(prefix="ddpt-e2e-inputs-")
    try:
        texts = os.path.join(root, "texts")
        words = "the quick brown fox jumps over the lazy dog\n" * 20
        visible = write(texts, "a.txt", words)
        visible += write(texts, "sub/b.txt", "pack my box with five dozen liquor jugs\n" * 20)
        write(texts, ".hidden.txt", "龍 鳳 麟\n" * 20)
        write(texts, ".git/objects/x", "龜 龍\n" * 20)
        write(texts, "sub/.swap", "鳳 龜\n" * 20)
        hidden_chars = set("龍鳳麟龜")

        vocab = os.path.join(root, "vocab.txt")
        out = run("vocab", "--size", "200", "--out", vocab, texts).stdout
        check(" in 2 files;" in out, f"vocab reads the 2 visible files: {out.strip()}")
        tokens = set(open(vocab, encoding="utf-8").read().split("\n"))
        check(not any(c in t for t in tokens for c in hidden_chars),
              "vocab holds no character of the dot-files")

        corpus = os.path.join(root, "corpus")
        run("shard", "--vocab", vocab, "--out", corpus, "--shards", "1", "--seq-len", "32", texts)
        m = json.load(open(os.path.join(corpus, "manifest.json")))
        check(m["totals"]["bytes_in"] == visible,
              f"shard reads the visible files' {visible} bytes, got {m['totals']['bytes_in']}")
        check(m["totals"]["unk_tokens"] == 0, "shard meets no [UNK]: it read no dot-file")

        # A dot-file named on the command line is read by both.
        hidden = os.path.join(texts, ".hidden.txt")
        out = run("vocab", "--size", "200", "--out", vocab, texts, hidden).stdout
        check(" in 3 files;" in out, f"vocab reads a named dot-file: {out.strip()}")
        check("龍" in open(vocab, encoding="utf-8").read().split("\n"), "vocab learnt the named dot-file")
        run("shard", "--vocab", vocab, "--out", corpus, "--shards", "1", "--seq-len", "32",
            "--overwrite", texts, hidden)
        m = json.load(open(os.path.join(corpus, "manifest.json")))
        check(m["totals"]["bytes_in"] == visible + os.path.getsize(hidden),
              "shard reads a named dot-file")
    finally:
        shutil.rmtree(root)
    if failures:
        print(f"e2e_inputs: {len(failures)} failures")
        return 1
    print("e2e_inputs: ok")
    return 0


DDPT = sys.argv[1]
sys.exit(main())
