#!/usr/bin/python3
"""End to end through the ddpt executable on real, messy text (Debian's
fortunes, English and Chinese, with ANSI escapes): vocab -> shard -> info,
verify, and `corpus sample` proving exactly-once per epoch for worlds 1-4,
masks independent of the world size, resume continuity across world sizes,
and one clear line with a non-zero exit for every bad input.

usage: e2e_shard_fortunes.py DDPT_BIN"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import json

FORTUNES = "/usr/share/games/fortunes"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, ok=True):
    p = subprocess.run([DDPT, *args], capture_output=True, text=True)
    if ok and p.returncode != 0:
        print("command failed:", " ".join(args), p.stderr)
        sys.exit(1)
    return p


def expect_error(args, code, needle, what):
    p = run(*args, ok=False)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == code, f"{what}: exit {p.returncode}, want {code}: {p.stderr.strip()}")
    check(len(lines) == 1, f"{what}: {len(lines)} lines on stderr, want 1: {p.stderr.strip()}")
    check(needle in p.stderr, f"{what}: message lacks '{needle}': {p.stderr.strip()}")
    return p


def expect_usage(args, needle, what):
    """A usage error: exit 2, the message first, then the command's usage."""
    p = run(*args, ok=False)
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 2, f"{what}: exit {p.returncode}, want 2: {p.stderr.strip()}")
    check(lines and needle in lines[0], f"{what}: first line lacks '{needle}': {p.stderr.strip()}")
    check(any(l.startswith(f"usage: ddpt {args[0]}") for l in lines), f"{what}: no usage")


def sample(corpus, world, rank, batch, steps, *extra):
    out = run("corpus", "sample", corpus, "--world", str(world), "--rank", str(rank),
              "--batch", str(batch), "--steps", str(steps), *extra).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"step (\d+):(.*)$", line)
        assert m, line
        rows.append(m.group(2).split())
    return rows


def key_and_mask(item):
    m = re.match(r"(\d+):(\d+)(\[.*\])?$", item)
    return (int(m.group(1)), int(m.group(2))), m.group(3)


def make_inputs(root):
    src = os.path.join(root, "text")
    os.makedirs(src)
    for name in ["science", "computers", "tang300", "song100"]:
        shutil.copy(os.path.join(FORTUNES, name), src)
    with open(os.path.join(FORTUNES, "chinese"), "rb") as f:
        data = f.read(400000)
    with open(os.path.join(src, "chinese-part"), "wb") as f:
        f.write(data[: data.rindex(b"\n%\n") + 3])
    return src


def main():
    root = tempfile.mkdtemp(prefix="ddpt-e2e-shard-")
    try:
        src = make_inputs(root)
        vocab = os.path.join(root, "vocab.txt")
        run("vocab", "--size", "5000", "--out", vocab, src)
        corpus = os.path.join(root, "corpus")
        p = run("shard", "--vocab", vocab, "--out", corpus, "--shards", "5", "--seq-len", "64",
                "--format", "fortune", "--nsp", "--valid-fraction", "0.02", "--seed", "7", src)
        check("documents:" in p.stdout and "MB/s" in p.stdout, "shard prints a summary")
        info = run("corpus", "info", corpus).stdout
        check("sentence pairs" in info and "shard-00004" in info, "corpus info names the layout")
        check(run("corpus", "verify", corpus).stdout.startswith(f"corpus {corpus}: ok"), "verify ok")
        manifest = json.load(open(os.path.join(corpus, "manifest.json")))
        sizes = [s["sequences"] for s in manifest["shards"]]

        # Exactly once per epoch for W = 1..4; the same masks whatever W.
        masks = {}
        for world in range(1, 5):
            seen = {}
            for rank in range(world):
                owned = sum(n for s, n in enumerate(sizes) if s % world == rank)
                for row in sample(corpus, world, rank, 1, owned, "--masks"):
                    key, mask = key_and_mask(row[0])
                    check(key[0] % world == rank, f"W={world}: rank {rank} read shard {key[0]}")
                    seen[key] = seen.get(key, 0) + 1
                    if world == 1:
                        masks[key] = mask
                    elif masks.get(key) != mask:
                        check(False, f"W={world}: masks of {key} differ from W=1")
            want = {(s, i) for s, n in enumerate(sizes) for i in range(n)}
            check(set(seen) == want and set(seen.values()) == {1},
                  f"W={world}: every sample exactly once ({len(seen)} of {len(want)})")

        # Resume: 4 steps + 6 steps with --state equal 10 straight steps.
        straight = sample(corpus, 2, 1, 4, 10)
        state = os.path.join(root, "state")
        resumed = sample(corpus, 2, 1, 4, 4, "--state", state)
        resumed += sample(corpus, 2, 1, 4, 6, "--state", state)
        check(straight == resumed, "--state resumes the same stream")

        # Part of an epoch on W=2, the rest on W=3: still exactly once.
        os.remove(state)
        got = []
        for rank, steps in [(0, 7), (1, 5)]:
            got += [key_and_mask(x)[0] for r in sample(corpus, 2, rank, 3, steps, "--state", state)
                    for x in r]
        cursors = {}
        for line in open(state).read().splitlines()[1:]:
            s, e, pos = map(int, line.split())
            cursors[s] = (e, pos)
        for rank in range(3):
            left = sum(sizes[s] - cursors[s][1] for s in range(5) if s % 3 == rank)
            got += [key_and_mask(r[0])[0] for r in sample(corpus, 3, rank, 1, left, "--state", state)]
        check(sorted(got) == sorted((s, i) for s, n in enumerate(sizes) for i in range(n)),
              "an epoch split between W=2 and W=3 reads every sample exactly once")

        bad_inputs(root, src, vocab, corpus)
    finally:
        shutil.rmtree(root)
    if failures:
        print(f"e2e_shard_fortunes: {len(failures)} failures")
        return 1
    print("e2e_shard_fortunes: ok")
    return 0


def bad_inputs(root, src, vocab, corpus):
    out = os.path.join(root, "bad")
    base = ["shard", "--vocab", vocab, "--out", out, "--shards", "2", "--seq-len", "64"]
    expect_error(base + [os.path.join(root, "missing.txt")], 1, "missing.txt", "missing input")
    check(not os.path.exists(out), "missing input creates nothing")
    expect_usage(base[:-1] + ["7", src], "--seq-len: '7' is not an integer in 8..512",
                 "seq-len under 8")
    expect_usage(base[:-1] + ["513", src], "--seq-len: '513'", "seq-len over 512")
    expect_usage(["shard", "--vocab", vocab, "--out", out, "--shards", "0", "--seq-len", "64", src],
                 "--shards: '0' is not an integer in 1..99999", "no shards")
    expect_usage(base + ["--threads", "-1", src], "--threads: '-1'", "negative threads")
    expect_usage(base + ["--valid-fraction", "x", src], "--valid-fraction: 'x' is not a number",
                 "valid-fraction not a number")
    expect_usage(["vocab", "--size", "12abc", src], "--size: '12abc' is not an integer",
                 "vocab size with trailing text")
    expect_usage(["corpus", "sample", "--rank", "2", "--world", "2", corpus],
                 "--rank must be below --world", "rank not below world")
    expect_usage(["corpus", "sample", "--steps", "-1", corpus], "--steps: '-1'", "negative steps")
    check(not os.path.exists(out), "a usage error creates nothing")
    blank = os.path.join(root, "blank.txt")
    open(blank, "w").write("\n  \n\n")
    expect_error(base + [blank], 1, "no documents", "zero documents")
    tiny = os.path.join(root, "tiny.txt")
    open(tiny, "w").write("one short document\nand another\n")
    expect_error(base + [tiny], 1, "only 1 training sequences", "more shards than sequences")
    check(not os.path.exists(out), "a failed run leaves nothing behind")
    expect_error(["shard", "--vocab", vocab, "--out", corpus, "--shards", "2", "--seq-len", "64",
                  src], 1, "--overwrite", "output not empty")
    other = os.path.join(root, "other-vocab.txt")
    open(other, "w").write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\n")
    p = expect_error(["corpus", "verify", "--vocab", other, corpus], 1, "SHA-256", "vocab mismatch")
    check(len(re.findall(r"[0-9a-f]{64}", p.stderr)) == 2, "vocab mismatch names both hashes")

    # Ctrl-C while sharding: exit 3, no manifest, readers say incomplete.
    # The text comes through a pipe that stays open until ddpt has exited,
    # so sharding cannot finish before the signal, and the stop cannot be
    # mistaken for the end of input. The write returns only once ddpt has
    # read all but a pipe's capacity (64 KiB) of it, so ddpt is inside the
    # writer, its handler installed, when the signal is sent.
    text = b"".join(open(os.path.join(src, n), "rb").read() for n in sorted(os.listdir(src)))
    text *= 2
    assert len(text) > 1 << 20, len(text)
    proc = subprocess.Popen([DDPT, *base, "--format", "fortune", "-"], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    proc.stdin.write(text)
    proc.stdin.flush()
    check(proc.poll() is None, "Ctrl-C: ddpt waits for the rest of its input")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        check(False, "Ctrl-C: ddpt did not stop while its input stayed open")
    err = proc.stderr.read().decode()
    proc.stdin.close()
    check(proc.returncode == 3, f"Ctrl-C: exit {proc.returncode}, want 3: {err.strip()}")
    check("incomplete" in err, "Ctrl-C: says the corpus is incomplete")
    check(not os.path.exists(os.path.join(out, "manifest.json")), "Ctrl-C: no manifest")
    for sub in (["info", out], ["verify", out], ["sample", out]):
        expect_error(["corpus", *sub], 1, "incomplete corpus", f"corpus {sub[0]} on interrupted")

    # A damaged shard: verify names it.
    shard = os.path.join(corpus, "shard-00003")
    table = [n for n in os.listdir(shard) if n.endswith(".ldb")][0]
    with open(os.path.join(shard, table), "r+b") as f:
        f.seek(os.path.getsize(os.path.join(shard, table)) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    expect_error(["corpus", "verify", corpus], 1, "shard-00003", "damaged shard")

    # A corpus inside its own input folder is not read back as text.
    nested = os.path.join(src, "corpus")
    run("shard", "--vocab", vocab, "--out", nested, "--shards", "2", "--seq-len", "64", src)
    expect_error(["shard", "--vocab", vocab, "--out", nested, "--shards", "2", "--seq-len", "64",
                  "--overwrite", src], 1, "among the inputs", "output inside an input")
    check(os.path.exists(os.path.join(nested, "manifest.json")), "nested corpus left intact")


DDPT = sys.argv[1]
sys.exit(main())
