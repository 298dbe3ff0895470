#!/usr/bin/python3
"""Independent reference for ddpt's tokenizer: the published algorithm of
google-research/bert tokenization.py (BasicTokenizer + WordpieceTokenizer =
FullTokenizer), written from its description with Python's unicodedata and
str.lower(), as that file uses them. Same interface as `ddpt tokenize`."""
import argparse
import sys
import unicodedata


def load_vocab(path):
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        for index, line in enumerate(f):
            vocab[line.rstrip("\n")] = index
    return vocab


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def clean(text):
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            continue
        out.append(" " if is_whitespace(ch) else ch)
    return "".join(out)


def space_cjk(text):
    return "".join(" %s " % ch if is_cjk(ord(ch)) else ch for ch in text)


def strip_accents(text):
    return "".join(ch for ch in unicodedata.normalize("NFD", text)
                   if unicodedata.category(ch) != "Mn")


def split_punctuation(text):
    pieces, current = [], []
    for ch in text:
        if is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text, lowercase):
    text = space_cjk(clean(text))
    words = []
    for word in text.split():
        if lowercase:
            word = strip_accents(word.lower())
        words.extend(split_punctuation(word))
    return " ".join(words).split()


def wordpiece(word, vocab, unk="[UNK]", max_chars=200):
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            sub = word[start:end]
            if start > 0:
                sub = "##" + sub
            if sub in vocab:
                found = sub
                break
            end -= 1
        if found is None:
            return [unk]
        pieces.append(found)
        start = end
    return pieces


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--cased", action="store_true")
    ap.add_argument("--ids", action="store_true")
    ap.add_argument("file", nargs="?", default="-")
    a = ap.parse_args()
    vocab = load_vocab(a.vocab)
    data = sys.stdin.buffer.read() if a.file == "-" else open(a.file, "rb").read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for raw in lines:
        tokens = []
        for word in basic_tokenize(raw.decode("utf-8", "ignore"), not a.cased):
            tokens.extend(wordpiece(word, vocab))
        out.append(" ".join(str(vocab[t]) for t in tokens) if a.ids else " ".join(tokens))
    sys.stdout.buffer.write(("\n".join(out) + ("\n" if out else "")).encode("utf-8", "surrogatepass"))


if __name__ == "__main__":
    main()
