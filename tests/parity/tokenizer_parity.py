#!/usr/bin/python3
"""Parity of `ddpt tokenize` with the independent Python reference
(bert_tokenization_ref.py, i.e. google-research/bert's FullTokenizer) on
real text (Debian's fortunes and fortunes-zh), hand-written hard cases,
seeded random bytes, and every Unicode code point in several contexts.
Three vocabs: one trained by `ddpt vocab` on the fortunes, one holding every
code point (so the basic tokenizer's output shows through unchanged), and a
tiny one (mostly [UNK] and ## splits). Outputs must be byte-identical.

The reference runs on Python's unicodedata (Unicode 14 in Python 3.11);
ddpt on utf8proc (Unicode 15 in 2.8). Code points that Unicode 15 assigned
and Python still calls unassigned are removed from the inputs, and only
those. usage: tokenizer_parity.py DDPT WORKDIR {cased|uncased}"""
import ctypes
import ctypes.util
import glob
import os
import random
import subprocess
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "bert_tokenization_ref.py")
FORTUNES = "/usr/share/games/fortunes"

HAND_CASES = [
    "Café naïve CAFÉ NAÏVE Cafe\u0301",
    "İstanbul İİ ıI",
    "ΟΔΟΣ ΟΔΟΣ. Σ ΣΑ ΑΣ'Α ὈΔΥΣΣΕΎΣ ΜΆΪΟΣ,",
    "你好，世界！「引号」《书名》…… —— ＡＢＣ１２３",
    "I ❤️ BERT 😀 👨\u200d👩\u200d👧 🇨🇳 ©®™",
    "𠀀𠀁 𪜀 𫝀 𫠠 𬺰 丽 한국어 カタカナ ひらがな",
    "BERT模型2019年 GPT-3的参数有1750亿个",
    "\x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[m",
    "zero\u200bwidth zero\u200cwidth zero\u200dwidth \ufeffbom soft\u00adhyphen wj\u2060x",
    "a\u00a0b\u3000c\u2028d\u2029e\u2009f\u202fg\u1680h\x85i\x0bj\x0ck\x1cl\x1fm",
    "a" * 250 + " " + "b" * 200 + " " + "ab" * 101,
    "",
    "   \t  ",
    "don't can't won't rock'n'roll e.g. U.S.A. 3.14 1,000,000 $100 50% #hashtag @user",
    "x^2 a`b a~b a|b a\\b {a} <a> [a] (a) a_b a-b a+b a=b",
    "\u00e9\u0301\u0327 e\u0327\u0301 \u1e0b\u0323 \u0d4b \u0f73 \U0001d165\U0001d16d",
    "ﬁ ﬀ Ⅻ ⅻ ① ㈱ ㎏ ℃ ™ ½",
    "ǅ ǈ ǋ ǲ ᾈ ᾼ ῌ ẞ ß ŉ ǰ",
    "Привет, МИР! Ёжик ЁЖИК",
    "مرحبا بالعالم! שלום עולם׃",
    "नमस्ते दुनिया। ภาษาไทย ສະບາຍດີ",
    "\ue000\uf8ff\U000f0000 private use",
]


def new_in_unicode15():
    """Code points utf8proc (Unicode 15) assigns and Python calls Cn."""
    lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so.2")
    lib.utf8proc_category.argtypes = [ctypes.c_int32]
    return {cp for cp in range(0x110000)
            if not 0xD800 <= cp <= 0xDFFF
            and unicodedata.category(chr(cp)) == "Cn" and lib.utf8proc_category(cp) != 0}


def strip_codepoints(data, excluded):
    text = data.decode("utf-8", "surrogateescape")
    return "".join(c for c in text if ord(c) not in excluded).encode("utf-8", "surrogateescape")


def all_codepoints_text():
    lines = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or cp == 10:
            continue
        c = chr(cp)
        lines.append(f"{c} A{c}\u03a3 A\u03a3{c}a x{c}y")
    return ("\n".join(lines) + "\n").encode("utf-8")


def random_bytes_text(seed, size):
    rng = random.Random(seed)
    pieces = [b" ", b"\n", b"a", b"Z", b"\xc3\xa9", b"\xe4\xb8\xad", b"\xf0\x9f\x98\x80", b"\x00",
              b"\xff", b"\xe4\xb8", b"\xed\xa0\x80", b"\xcc\x81", b"\xce\xa3", b"\xc4\xb0", b".",
              b"\xef\xbc\x8c", b"\x1b", b"\xe2\x80\x8b", b"\xc2\xa0", b"##", b"[UNK]"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(pieces) if rng.random() < 0.8 else bytes([rng.randrange(256)])
    return bytes(out)


def run(cmd, stdin_path=None):
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as f:
        r = subprocess.run(cmd, stdin=f, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit("parity: %s failed (%d): %s" % (cmd[0], r.returncode, r.stderr.decode(errors="replace")))
    return r.stdout


def main():
    ddpt, work, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    cased = mode == "cased"
    flags = ["--cased"] if cased else []
    if not os.path.isdir(FORTUNES):
        print("parity: %s missing: run scripts/install-deps.sh (fortunes, fortunes-zh)" % FORTUNES)
        return 1
    os.makedirs(work, exist_ok=True)
    excluded = new_in_unicode15()

    zh_names = {"chinese", "tang300", "song100"}
    files = sorted(f for f in glob.glob(FORTUNES + "/*") if os.path.isfile(f) and "." not in os.path.basename(f))
    inputs = {
        "fortunes-en": b"".join(open(f, "rb").read() for f in files if os.path.basename(f) not in zh_names),
        "fortunes-zh": b"".join(open(f, "rb").read() for f in files if os.path.basename(f) in zh_names),
        "hand-cases": ("\n".join(HAND_CASES) + "\n").encode("utf-8")
        + b"ab\x00c\xff\xfed \xe4\xb8 x \xed\xa0\x80y \xc0\xaf \xf4\x90\x80\x80 end\n\xe4\xb8",
        "random-bytes": random_bytes_text(2019, 1 << 20),
        "all-codepoints": all_codepoints_text(),
    }
    paths = {}
    for name, data in inputs.items():
        paths[name] = os.path.join(work, name + ".txt")
        with open(paths[name], "wb") as f:
            f.write(strip_codepoints(data, excluded))

    trained = os.path.join(work, "trained-%s.txt" % mode)
    run([ddpt, "vocab", "--size", "8000", "--out", trained] + flags + [paths["fortunes-en"], paths["fortunes-zh"]])
    everything = os.path.join(work, "every-codepoint.txt")
    with open(everything, "w", encoding="utf-8", newline="") as f:
        f.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
        cps = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and cp not in (10, 13)]
        f.write("".join(chr(cp) + "\n" for cp in cps))
        f.write("".join("##" + chr(cp) + "\n" for cp in cps))
    tiny = os.path.join(work, "tiny.txt")
    with open(tiny, "w", encoding="utf-8") as f:
        f.write("\n".join(["[UNK]", "the", "##s", "un", "##aff", "##able", "a", "##a", "模", "型",
                           "，", ".", "##ing", "e", "##e", "i", "##i", "σ", "ς"]) + "\n")

    runs = [(trained, n, []) for n in inputs] + [(trained, "fortunes-zh", ["--ids"])]
    runs += [(everything, n, []) for n in inputs if n != "fortunes-zh"]
    runs += [(tiny, n, []) for n in ("fortunes-en", "hand-cases", "random-bytes")]
    failed = 0
    for vocab, name, extra in runs:
        ours = run([ddpt, "tokenize", "--vocab", vocab] + flags + extra + [paths[name]])
        ref = run([sys.executable, REF, "--vocab", vocab] + flags + extra + [paths[name]])
        label = "%s %s vocab=%s %s" % (mode, name, os.path.basename(vocab), " ".join(extra))
        if ours == ref:
            print("parity: identical  %s (%d lines)" % (label, ref.count(b"\n")))
            continue
        failed += 1
        a, b = ours.split(b"\n"), ref.split(b"\n")
        src = open(paths[name], "rb").read().split(b"\n")
        bad = [i for i in range(max(len(a), len(b))) if i >= len(a) or i >= len(b) or a[i] != b[i]]
        print("parity: DIFFERENT  %s: %d of %d lines" % (label, len(bad), len(b)))
        for i in bad[:5]:
            print("  line %d input %r\n    ddpt %r\n    ref  %r" % (
                i + 1, src[i][:200] if i < len(src) else None,
                a[i][:200] if i < len(a) else None, b[i][:200] if i < len(b) else None))
    print("parity: excluded %d code points new in Unicode 15 (utf8proc) but unassigned in Python %s's Unicode %s"
          % (len(excluded), sys.version.split()[0], unicodedata.unidata_version))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
