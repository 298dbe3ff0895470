#!/usr/bin/python3
"""`ddpt tokenize` end to end against the tokenizer library alone, in MB/s of input.

English (Debian's fortunes) and Chinese (fortunes-zh) text, each repeated to
--mb megabytes in a scratch directory, one vocab of 30 000 trained on both.
The library figure is bench_tokenize's (tok_encode over the text in memory,
one thread). The command runs as a user runs it, reading the file and
writing token strings or --ids to /dev/null or to a file (--out); it is
timed by its CPU time (user + sys: "per core") and by the wall clock.

On a shared machine the runs are taken in rounds, every configuration once
per round, so that a busy spell slows all of them alike, and each figure is
the best of --runs rounds (the least disturbed run). --baseline DIR adds the
same rows for another build (say, the last commit's) in the same rounds.

usage: bench/tokenize_throughput.py [--build build] [--baseline DIR] [--mb 64]
                                    [--runs 5] [--threads 2,4] [--keep DIR]
"""
import argparse
import glob
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time

FORTUNES = "/usr/share/games/fortunes"
CHINESE = ("chinese", "tang300", "song100")  # the files of fortunes-zh


def make_text(path, sources, mb):
    """Concatenates sources, repeated until the text reaches mb megabytes."""
    one = b"".join(open(s, "rb").read() for s in sources)
    with open(path, "wb") as f:
        for _ in range(max(1, (mb * 1000000 + len(one) - 1) // len(one))):
            f.write(one)


def library(build, vocab, text):
    """One pass of bench_tokenize: (MB/s per CPU second, MB/s per wall second)."""
    out = subprocess.run([os.path.join(build, "bench_tokenize"), vocab, text, "0"],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"([0-9.]+) MB/s per core \(([0-9.]+) MB/s wall\)", out)
    return float(m.group(1)), float(m.group(2))


def command(build, vocab, text, args, out_path):
    """One run of ddpt tokenize: (MB/s per CPU second, MB/s per wall second)."""
    cmd = [os.path.join(build, "ddpt"), "tokenize", "--vocab", vocab] + args
    if out_path:
        cmd += ["--out", out_path]
    cmd.append(text)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        subprocess.run(cmd, stdout=null, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    mb = os.path.getsize(text) / 1e6
    return mb / cpu, mb / wall


def has_threads(build):
    r = subprocess.run([os.path.join(build, "ddpt"), "help", "tokenize"], capture_output=True, text=True)
    return "--threads" in r.stdout + r.stderr


def rows_for(name, build, vocab, texts, work, threads):
    """(label, run) for each configuration of one build."""
    one = ["--threads", "1"] if has_threads(build) else []
    rows = []
    for lang, text in texts.items():
        rows.append(("%s %-8s library (tok_encode)" % (lang, name),
                     lambda b=build, t=text: library(b, vocab, t)))
        modes = [("tokens > /dev/null", one, None), ("--ids > /dev/null", ["--ids"] + one, None),
                 ("tokens --out FILE", one, "out")]
        modes += [("tokens --threads %s" % n, ["--threads", n], None) for n in threads]
        modes += [("--ids --threads %s" % n, ["--ids", "--threads", n], None) for n in threads]
        for label, args, out in modes:
            out_path = os.path.join(work, "%s.%s.%s" % (lang, name, out)) if out else None
            rows.append(("%s %-8s ddpt tokenize %s" % (lang, name, label),
                         lambda b=build, t=text, a=args, o=out_path: command(b, vocab, t, a, o)))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="build directory with ddpt and bench_tokenize")
    p.add_argument("--baseline", help="another build directory to time in the same rounds")
    p.add_argument("--mb", type=int, default=64, help="size of each text, in MB")
    p.add_argument("--runs", type=int, default=5, help="rounds; each figure is the best of them")
    p.add_argument("--threads", default="", help="--threads values to time as well, e.g. 2,4")
    p.add_argument("--keep", help="keep the texts, vocab and outputs in this directory")
    a = p.parse_args()

    work = a.keep or tempfile.mkdtemp(prefix="ddpt-bench-tokenize-")
    os.makedirs(work, exist_ok=True)
    try:
        english = sorted(f for f in glob.glob(os.path.join(FORTUNES, "*"))
                         if os.path.isfile(f) and "." not in os.path.basename(f)
                         and os.path.basename(f) not in CHINESE)
        chinese = [os.path.join(FORTUNES, f) for f in CHINESE]
        texts = {}
        for lang, sources in (("en", english), ("zh", chinese)):
            texts[lang] = os.path.join(work, lang + ".txt")
            if not os.path.exists(texts[lang]):
                make_text(texts[lang], sources, a.mb)
        vocab = os.path.join(work, "vocab.txt")
        if not os.path.exists(vocab):
            subprocess.run([os.path.join(a.build, "ddpt"), "vocab", "--size", "30000", "--out", vocab]
                           + english + chinese, check=True, stdout=subprocess.DEVNULL)

        threads = [t for t in a.threads.split(",") if t]
        rows = rows_for("build", a.build, vocab, texts, work, threads)
        if a.baseline:
            rows += rows_for("baseline", a.baseline, vocab, texts, work, [])
        rows.sort(key=lambda r: r[0][:2])  # en rows, then zh rows, both builds side by side
        best = {label: (0.0, 0.0) for label, _ in rows}
        loads = []
        for _ in range(a.runs):
            loads.append(os.getloadavg()[0])
            for label, run in rows:
                core, wall = run()
                best[label] = (max(best[label][0], core), max(best[label][1], wall))

        print("%s, %d CPUs; load average %.1f to %.1f over the rounds; best of %d rounds"
              % (cpu_model(), os.cpu_count(), min(loads), max(loads), a.runs))
        print("texts: en %.1f MB, zh %.1f MB; MB of input per second"
              % (os.path.getsize(texts["en"]) / 1e6, os.path.getsize(texts["zh"]) / 1e6))
        print("%-52s %9s %9s" % ("", "per core", "wall"))
        for label, _ in rows:
            print("%-52s %9.1f %9.1f" % (label, best[label][0], best[label][1]))
    finally:
        if not a.keep:
            shutil.rmtree(work)


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
