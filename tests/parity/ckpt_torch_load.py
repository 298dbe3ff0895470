#!/usr/bin/python3
"""A checkpoint written by `ddpt train` loads into PyTorch by name, and
PyTorch predicts what `ddpt fill-mask` prints.

For a corpus without and one with next-sentence pairs (so both
BertForMaskedLM and BertForPreTraining layouts), trains bert-tiny briefly
with ddpt (path in argv[1]), then with h5py and tests/parity/bert_reference.py:
  1. the model is built from the checkpoint's `config` attribute alone;
  2. /params loads with load_state_dict, names as they are, nothing renamed:
     nothing unexpected, and the only missing keys are the two tied ones,
     cls.predictions.decoder.weight (= bert.embeddings.word_embeddings.weight)
     and cls.predictions.decoder.bias (= cls.predictions.bias), which stay
     tied, as HuggingFace's from_pretrained leaves them;
  3. for masked sentences, the float64 PyTorch softmax at each [MASK] has
     the same top-1 token as `ddpt fill-mask --json`, and every probability
     ddpt prints is within 1e-4 of PyTorch's for that token.
"""
import configparser
import json
import os
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
from harness import fail, run  # noqa: E402

TOL = 1e-4
TIED = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "my bird flew over her house",
             "his fish swam under our bridge", "your horse jumped across their field",
             "one mouse hid behind that door"]
QUERIES = ["the cat [MASK] on the mat", "a [MASK] ran in the [MASK]", "[MASK] bird flew over her house",
           "his fish swam under our bridge [MASK]"]


def train(ddpt, d, name, nsp):
    """A checkpoint of bert-tiny after 100 steps on the sentences; its path."""
    text = os.path.join(d, name + ".txt")
    with open(text, "w") as f:
        for i in range(300):  # documents of three sentences (one line each with --format docs)
            f.write("\n".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(3)) + "\n\n")
    corpus, run_dir = os.path.join(d, name + "-corpus"), os.path.join(d, name + "-run")
    run(ddpt, "shard", "--vocab", os.path.join(d, "vocab.txt"), "--out", corpus, "--shards", "1",
        "--seq-len", "16", "--format", "docs", "--seed", "1", *(["--nsp"] if nsp else []), text)
    with open(os.path.join(d, "tiny.ini"), "w") as f:
        f.write("[model]\npreset = bert-tiny\nmax_position_embeddings = 32\n")
    run(ddpt, "train", os.path.join(d, "tiny.ini"), "--run-dir", run_dir, "--threads", "2",
        "--set", "data.corpus=" + corpus, "--set", "train.steps=100", "--set", "train.batch_size=16",
        "--set", "optim.lr=1e-3", "--set", "optim.clip_norm=1", "--set", "data.mask_prob=0.3",
        "--set", "schedule.warmup_steps=10", "--set", "log.eval_every=0", "--set", "checkpoint.every=0")
    return os.path.join(run_dir, open(os.path.join(run_dir, "LATEST")).read().strip())


def load_torch(path):
    """The PyTorch model of the checkpoint at path, from the file alone."""
    with h5py.File(path, "r") as f:
        ini = configparser.ConfigParser(interpolation=None)
        ini.read_string(f.attrs["config"].decode())
        m = ini["model"]
        cfg = ref.Config(
            vocab_size=int(m["vocab_size"]), hidden_size=int(m["hidden_size"]),
            num_hidden_layers=int(m["num_hidden_layers"]),
            num_attention_heads=int(m["num_attention_heads"]),
            intermediate_size=int(m["intermediate_size"]),
            max_position_embeddings=int(m["max_position_embeddings"]),
            type_vocab_size=int(m["type_vocab_size"]), layer_norm_eps=float(m["layer_norm_eps"]))
        state = {name: torch.from_numpy(f["params"][name][()]) for name in f["params"]}
    nsp = "bert.pooler.dense.weight" in state
    model = (ref.BertForPreTraining if nsp else ref.BertForMaskedLM)(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        fail("%s: names PyTorch does not know: %s" % (path, unexpected))
    if set(missing) != TIED:
        fail("%s: missing %s, want only the tied %s" % (path, sorted(missing), sorted(TIED)))
    head = model.cls.predictions
    if head.decoder.weight is not model.bert.embeddings.word_embeddings.weight or head.decoder.bias is not head.bias:
        fail("the decoder is no longer tied after loading")
    if not torch.equal(head.decoder.weight, state["bert.embeddings.word_embeddings.weight"]) or \
            not torch.equal(head.decoder.bias, state["cls.predictions.bias"]):
        fail("the tied decoder does not hold the checkpoint's values")
    return model.double().eval(), len(state), nsp


def check(ddpt, d, path):
    model, n_params, nsp = load_torch(path)
    vocab = {t: i for i, t in enumerate(open(os.path.join(d, "vocab.txt")).read().split("\n")[:-1])}
    worst, masks = 0.0, 0
    for q in QUERIES:
        out = json.loads(run(ddpt, "fill-mask", "--ckpt", path, "--vocab", os.path.join(d, "vocab.txt"),
                             "--json", "--top-k", "5", q))
        tokens = ["[CLS]"] + q.split() + ["[SEP]"]
        if out["tokens"] != tokens:
            fail("%r: ddpt tokenized %s, want %s" % (q, out["tokens"], tokens))
        ids = torch.tensor([[vocab[t] for t in tokens]])
        zeros = torch.zeros_like(ids)
        with torch.no_grad():
            x, _ = model.bert(ids, zeros, torch.ones_like(ids))
            probs = torch.softmax(model.cls.predictions(x)[0], dim=-1).numpy()
        positions = [i for i, t in enumerate(tokens) if t == "[MASK]"]
        if [m["position"] for m in out["masks"]] != positions:
            fail("%r: ddpt's mask positions %s, want %s" % (q, [m["position"] for m in out["masks"]], positions))
        for m in out["masks"]:
            p = probs[m["position"]]
            top = m["predictions"]
            if top[0]["id"] != int(np.argmax(p)):
                fail("%r at %d: ddpt's top-1 is %s, PyTorch's %d" % (q, m["position"], top[0], int(np.argmax(p))))
            for t in top:
                worst = max(worst, abs(t["prob"] - p[t["id"]]))
                if abs(t["prob"] - p[t["id"]]) > TOL:
                    fail("%r at %d: %s has p %.7f in ddpt, %.7f in PyTorch" % (q, m["position"], t["token"],
                                                                                t["prob"], p[t["id"]]))
            masks += 1
    print("%s: %s, %d tensors loaded by name (+ 2 tied); %d masks: same top-1, max |dp| %.2e over the top 5"
          % (os.path.basename(os.path.dirname(path)), "BertForPreTraining" if nsp else "BertForMaskedLM",
             n_params, masks, worst))


def main():
    ddpt = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ddpt-torch-load-") as d:
        words = sorted({w for s in SENTENCES for w in s.split()})
        with open(os.path.join(d, "vocab.txt"), "w") as f:
            f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
        for name, nsp in (("mlm", False), ("nsp", True)):
            check(ddpt, d, train(ddpt, d, name, nsp))
    print("ckpt_torch_load: ok")


if __name__ == "__main__":
    main()
