#!/usr/bin/python3
"""Sequences/s of `ddpt predict` against PyTorch on the same fine-tuned model,
the same inputs, batches and threads.

Writes a classification checkpoint (random weights, BertForSequenceClassification
heads, 3 labels) of each preset with h5py in ddpt's format (as
tests/parity/predict_parity.py does), and N lines of 5..60 words drawn from a
30 000-word vocab (each word one piece, so sequences are 7..62 tokens), then:
  - ddpt: `ddpt predict --ckpt CKPT --batch B --threads T FILE >/dev/null`,
    wall time end to end (loading the checkpoint, tokenizing, printing);
    "steady" subtracts the wall time of a run over the first B lines (start,
    checkpoint load, one batch) and counts the other N - B lines;
  - PyTorch: tests/parity/bert_reference.py's BertForSequenceClassification
    with the same weights, eval(), torch.no_grad(), torch.set_num_threads(T), batches
    of B lines in input order padded to the longest, as ddpt batches them;
    ids are computed beforehand (tokenization is not timed), one warm-up
    batch not timed.
Both sides run in alternation for --rounds rounds; the table shows each
side's best round. The header names the CPU, the load average, ddpt's
OpenBLAS kernel (`ddpt version`) and torch's version.

usage: bench/predict_bench.py [--ddpt build/ddpt] [--presets bert-small,bert-base]
                              [--threads 2] [--lines 1024] [--batch 32] [--rounds 2]
Needs Debian's /usr/bin/python3 with python3-torch, h5py and numpy.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
import bert_reference as ref  # noqa: E402
import predict_parity as pp  # noqa: E402

VOCAB_WORDS = 30000
LABELS = ["negative", "neutral", "positive"]


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def blas_line(ddpt):
    out = subprocess.run([ddpt, "version"], capture_output=True, text=True).stdout
    return next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.strip().startswith("blas:")), "?")


def make_inputs(d, n):
    words = ["w%d" % i for i in range(VOCAB_WORDS)]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(tokens) + "\n")
    rng = np.random.default_rng(1)
    lines = [" ".join(words[k] for k in rng.integers(0, VOCAB_WORDS, int(rng.integers(5, 61)))) for _ in range(n)]
    path = os.path.join(d, "inputs.txt")
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    vocab = {t: i for i, t in enumerate(tokens)}
    ids = [[vocab["[CLS]"]] + [vocab[w] for w in l.split()] + [vocab["[SEP]"]] for l in lines]
    return tokens, path, ids


def make_model(d, preset, tokens):
    layers, hidden, heads, inter = ref.PRESETS[preset]
    shape = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                 intermediate_size=inter, max_position_embeddings=512, type_vocab_size=2,
                 layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(1)
    model = ref.BertForSequenceClassification(ref.Config(vocab_size=len(tokens), **shape), len(LABELS))
    ref.init_weights(model)
    ckpt = os.path.join(d, preset + ".h5")
    pp.write_ckpt(ckpt, model, tokens, [("task", "classify"), ("num_labels", len(LABELS))], LABELS, shape)
    return ckpt, model.eval()


def time_ddpt(ddpt, ckpt, path, batch, threads):
    t0 = time.perf_counter()
    subprocess.run([ddpt, "predict", "--ckpt", ckpt, "--batch", str(batch), "--threads", str(threads), path],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def time_torch(model, ids, batch, threads):
    torch.set_num_threads(threads)
    batches = []
    for s in range(0, len(ids), batch):
        chunk = ids[s:s + batch]
        L = max(len(x) for x in chunk)
        t = torch.zeros(len(chunk), L, dtype=torch.long)
        att = torch.zeros(len(chunk), L, dtype=torch.long)
        for i, x in enumerate(chunk):
            t[i, :len(x)] = torch.tensor(x)
            att[i, :len(x)] = 1
        batches.append((t, torch.zeros_like(t), att))
    with torch.no_grad():
        model(*batches[0])
        t0 = time.perf_counter()
        for b in batches:
            torch.softmax(model(*b)[1], -1)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ddpt", default=os.path.join(HERE, "..", "build", "ddpt"))
    ap.add_argument("--presets", default="bert-small")
    ap.add_argument("--threads", default=str(os.cpu_count() or 1))
    ap.add_argument("--lines", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    print("cpu: %s, %d CPUs, load average %.2f at start" % (cpu_name(), os.cpu_count(), os.getloadavg()[0]))
    print("ddpt blas: %s; torch %s" % (blas_line(a.ddpt), torch.__version__))
    with tempfile.TemporaryDirectory(prefix="ddpt-predict-bench-") as d:
        tokens, path, ids = make_inputs(d, a.lines)
        first = os.path.join(d, "first.txt")
        with open(path) as f, open(first, "w") as g:
            g.writelines(f.readlines()[:a.batch])
        n_tok = sum(len(x) for x in ids)
        print("%d lines, %d tokens (mean %.1f per sequence), batch %d" % (a.lines, n_tok, n_tok / a.lines, a.batch))
        print("%-11s %7s %14s %14s %14s %8s" % ("preset", "threads", "ddpt seq/s", "ddpt steady", "pytorch seq/s",
                                               "ratio"))
        for preset in a.presets.split(","):
            ckpt, model = make_model(d, preset, tokens)
            for threads in [int(t) for t in a.threads.split(",")]:
                best = {"ddpt": 1e30, "start": 1e30, "torch": 1e30}
                for _ in range(a.rounds):
                    best["start"] = min(best["start"], time_ddpt(a.ddpt, ckpt, first, a.batch, threads))
                    best["ddpt"] = min(best["ddpt"], time_ddpt(a.ddpt, ckpt, path, a.batch, threads))
                    best["torch"] = min(best["torch"], time_torch(model, ids, a.batch, threads))
                e2e = a.lines / best["ddpt"]
                steady = (a.lines - a.batch) / max(best["ddpt"] - best["start"], 1e-9)
                torch_rate = a.lines / best["torch"]
                print("%-11s %7d %14.1f %14.1f %14.1f %7.2fx" % (preset, threads, e2e, steady, torch_rate,
                                                               steady / torch_rate), flush=True)
    print("load average %.2f at end; ratio = ddpt steady / PyTorch" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
