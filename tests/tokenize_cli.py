#!/usr/bin/python3
"""`ddpt tokenize` as a command: its output does not depend on --threads (on
an input of several 1 MiB chunks, with every kind of line), ids and tokens
name the same vocab entries, tokens of 15, 16 and more bytes are written
whole, --out gives the same bytes as standard output and replaces a file
only when the run succeeds, and a failed write is reported.
usage: tokenize_cli.py DDPT WORKDIR"""
import os
import shutil
import subprocess
import sys

FORTUNES = "/usr/share/games/fortunes"
LONG = ["abcdefghijklmno", "abcdefghijklmnop", "##abcdefghijklmnopqrstuvwxyz",
        "supercalifragilisticexpialidocious"]  # 15, 16, 28 and 34 bytes
WIDE_LINE = b"abcdefghijklmno Abcdefghijklmnop abcdefghijklmnopabcdefghijklmnopqrstuvwxyz supercalifragilisticexpialidocious."
WIDE_TOKENS = (b"abcdefghijklmno abcdefghijklmnop abcdefghijklmnop ##abcdefghijklmnopqrstuvwxyz "
               b"supercalifragilisticexpialidocious .")

failures = []


def check(ok, what):
    print("tokenize_cli: %s  %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, **kw)


def main():
    ddpt, work = sys.argv[1], sys.argv[2]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    english = [os.path.join(FORTUNES, f) for f in ("fortunes", "computers", "science")]
    chinese = [os.path.join(FORTUNES, f) for f in ("chinese", "tang300")]
    text = b"".join(open(f, "rb").read() for f in english + chinese)
    odd = (b"\n\n   \r\nCRLF line\r\n\tTabs\there\nNUL\x00inside \xff\xfe invalid \xe4\xb8\n"
           + WIDE_LINE + b"\n" + b"word " * 100000 + b"\n")
    data = (text + odd) * 2 + b"a final line without a newline"
    src = os.path.join(work, "input.txt")
    open(src, "wb").write(data)
    check(len(data) > 5 << 20, "the input spans several 1 MiB chunks (%d bytes)" % len(data))

    base = os.path.join(work, "vocab-base.txt")
    r = run([ddpt, "vocab", "--size", "8000", "--out", base] + english + chinese)
    check(r.returncode == 0, "ddpt vocab builds the test vocab %s" % r.stderr.decode().strip())
    vocab = os.path.join(work, "vocab.txt")
    tokens = open(base, encoding="utf-8").read().split("\n")[:-1] + LONG
    open(vocab, "w", encoding="utf-8").write("\n".join(tokens) + "\n")

    outs = {}
    for mode in ([], ["--ids"]):
        for threads in ("1", "2", "7"):
            r = run([ddpt, "tokenize", "--vocab", vocab, "--threads", threads] + mode + [src])
            check(r.returncode == 0, "tokenize %s --threads %s exits 0" % (" ".join(mode), threads))
            outs[(tuple(mode), threads)] = r.stdout
        same = outs[(tuple(mode), "1")] == outs[(tuple(mode), "2")] == outs[(tuple(mode), "7")]
        check(same, "tokenize %s: --threads 1, 2 and 7 give the same bytes" % " ".join(mode))

    words, ids = outs[((), "1")], outs[(("--ids",), "1")]
    check(words.count(b"\n") == data.count(b"\n") + 1 and words.endswith(b"\n"),
          "one output line per input line, the last one without a newline included")
    spelled = b"\n".join(b" ".join(tokens[int(i)].encode() for i in line.split())
                         for line in ids.split(b"\n"))
    check(spelled == words, "every id names the token written in its place")
    line = words.split(b"\n")[data.split(b"\n").index(WIDE_LINE)]
    check(line == WIDE_TOKENS, "tokens of 15, 16, 28 and 34 bytes are written whole: %r" % line)

    out = os.path.join(work, "out", "tokens.txt")
    os.makedirs(os.path.dirname(out))
    r = run([ddpt, "tokenize", "--vocab", vocab, "--threads", "3", "--out", out, src])
    check(r.returncode == 0 and r.stdout == b"" and open(out, "rb").read() == words,
          "--out writes the same bytes as standard output, and nothing to standard output")
    bad = os.path.join(work, "bad.txt")
    open(bad, "wb").write(b"fine\n" * 1000 + b"x" * ((16 << 20) + 1) + b"\n")
    r = run([ddpt, "tokenize", "--vocab", vocab, "--out", out, bad])
    check(r.returncode == 1 and b"line 1001 is longer than" in r.stderr,
          "an overlong line fails with its line number: %r" % r.stderr.strip())
    check(open(out, "rb").read() == words and os.listdir(os.path.dirname(out)) == ["tokens.txt"],
          "a failed run leaves the old --out file whole and no temporary beside it")

    if os.path.exists("/dev/full"):
        with open("/dev/full", "wb") as full:
            r = subprocess.run([ddpt, "tokenize", "--vocab", vocab, "--threads", "2", src],
                               stdout=full, stderr=subprocess.PIPE)
        check(r.returncode == 1 and b"cannot write standard output" in r.stderr,
              "a full disk is reported: %r" % r.stderr.strip())
    r = run([ddpt, "tokenize", "--vocab", vocab, "--threads", "0", src])
    check(r.returncode == 2, "--threads 0 is a usage error")

    if failures:
        print("tokenize_cli: %d checks failed" % len(failures))
        return 1
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
