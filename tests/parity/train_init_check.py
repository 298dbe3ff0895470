#!/usr/bin/python3
"""Continued pretraining (`ddpt train CONFIG --init MODEL`) starts from the
imported model exactly: its step-1 loss is the imported model's loss, in
PyTorch, on the very batch and masks ddpt drew. argv[1] is the ddpt binary.

1. A random BertForPreTraining (bert_reference.py, weights spread wide, so a
   wrong, swapped or transposed tensor moves the loss) is written as a
   HuggingFace directory by safetensors_io (model.safetensors, config.json,
   vocab.txt) and as Google's TF release by tf_bundle_writer; both say
   dropout 0.1, as released models do.
2. Text is sharded with that vocab.txt into an NSP corpus (`ddpt shard`).
3. `ddpt train --init` runs one step, dropout set to 0 by the only [model]
   keys the config sets (the sizes come from --init; the run's config.ini
   names no preset and holds the init's sizes), with [log] samples = true,
   from the HF
   directory, from the TF checkpoint prefix and from the TF bundle after
   `ddpt import` (an .h5).
4. The batch of step 1 is rebuilt from the sample log (shard:index@epoch),
   the records read with plyvel, the masks from `ddpt corpus sample --masks`
   with the run's seed; PyTorch in float64 computes the MLM loss (mean over
   the batch's predicted tokens) and the NSP loss (mean over its sequences)
   of the imported weights. Each equals metrics.jsonl's step-1 mlm_loss,
   nsp_loss and loss within TOL relative.
5. The first checkpoint records the vocab (its `vocab` attribute is
   vocab.txt). Refused, each with one line on stderr: a [model] hidden_size
   that disagrees with --init (the line names both values); a corpus sharded
   with another vocab of the same size (its words permuted: only the hash can
   tell); --init with --resume (a usage error, exit 2).
"""
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import plyvel
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
import tf_bundle_writer as tfw  # noqa: E402
from harness import fail, run  # noqa: E402

TOL = 1e-5  # relative, ddpt's float32 step-1 losses against PyTorch's float64
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ("the a my his her your our their one that cat dog bird fish horse mouse sat ran flew swam jumped hid "
         "on in over under across behind mat park house bridge field door quickly slowly").split()
SEQ_LEN, BATCH, SEED, MASK_PROB = 32, 8, 4321, 0.15
MAX_PREDICTIONS = math.ceil(MASK_PROB * SEQ_LEN)
TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64)


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def random_bert(cfg, seed):
    """HF-named weights of a BertForPreTraining drawn wide
    (ref.spread_weights), without the two tied keys HuggingFace stores once."""
    weights = ref.spread_weights(ref.BertForPreTraining(cfg), seed)
    return {k: v for k, v in weights.items() if k not in TIED}


def documents(seed):
    """Blank-line-separated documents of 3-6 sentences of 4-9 words."""
    rng = random.Random(seed)
    docs = []
    for _ in range(60):
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) for _ in range(rng.randint(3, 6))]
        docs.append("\n".join(sentences) + "\n")
    return "\n".join(docs)


def read_records(corpus, name, id_bytes):
    """Records of one shard in key order: (flags, split, ids)."""
    db = plyvel.DB(os.path.join(corpus, name), create_if_missing=False)
    out = []
    for i, (key, value) in enumerate(db):
        if key != struct.pack(">Q", i):
            fail("%s: key %s at %d" % (name, key.hex(), i))
        version, flags, n, split = struct.unpack_from("<BBHH", value, 0)
        if version != 1:
            fail("%s: record %d has version %d" % (name, i, version))
        out.append((flags, split, list(struct.unpack_from("<%d%s" % (n, "H" if id_bytes == 2 else "I"), value, 6))))
    db.close()
    return out


def sampled_masks(ddpt, corpus):
    """Step 0 of `ddpt corpus sample --masks` with the run's seed and budget:
    [(shard, index, {position: input id})] in batch order."""
    out = run(ddpt, "corpus", "sample", "--batch", str(BATCH), "--steps", "1", "--seed", str(SEED), "--masks",
              "--max-predictions", str(MAX_PREDICTIONS), corpus)
    line = out.splitlines()[0]
    if not line.startswith("step 0: "):
        fail("ddpt corpus sample printed %r" % line)
    rows = []
    for item in line[len("step 0: "):].split():
        where, masks = item.rstrip("]").split("[")
        shard, index = (int(x) for x in where.split(":"))
        rows.append((shard, index, {int(p): int(i) for p, i in (m.split("=") for m in masks.split(",") if m)}))
    return rows


def step1_batch(ddpt, corpus, run_dir):
    """Step 1's batch as ddpt read it: (input_ids, segments, attention,
    labels with -100 where not predicted, NSP labels)."""
    m = json.load(open(os.path.join(corpus, "manifest.json")))
    shards = [read_records(corpus, s["name"], m["id_bytes"]) for s in m["shards"]]
    with open(os.path.join(run_dir, "samples", "rank-0.txt")) as f:
        head, rest = f.readline().split(":", 1)
    if head != "step 1":
        fail("%s/samples/rank-0.txt starts with %r, want step 1" % (run_dir, head))
    logged = [tuple(int(x) for x in s.replace("@", ":").split(":")) for s in rest.split()]
    masks = sampled_masks(ddpt, corpus)
    if [(s, i, 0) for s, i, _ in masks] != logged:
        fail("step 1 read %s; ddpt corpus sample --seed %d gives %s" % (logged, SEED, [(s, i) for s, i, _ in masks]))
    ids = torch.full((BATCH, SEQ_LEN), m["vocab"]["pad_id"], dtype=torch.long)
    seg, attn = torch.zeros_like(ids), torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    nsp = torch.zeros(BATCH, dtype=torch.long)
    for b, (shard, index, chosen) in enumerate(masks):
        flags, split, rec = shards[shard][index]
        if not flags & 1:
            fail("record %d:%d is not a sentence pair in an --nsp corpus" % (shard, index))
        ids[b, :len(rec)] = torch.tensor(rec)
        seg[b, split:len(rec)] = 1
        attn[b, :len(rec)] = 1
        nsp[b] = 1 if flags & 2 else 0
        for p, given in chosen.items():
            labels[b, p] = rec[p]
            ids[b, p] = given
    return ids, seg, attn, labels, nsp


def torch_losses(weights, cfg, batch):
    """(MLM, NSP) losses of the weights on the batch: float64, no dropout."""
    model = ref.BertForPreTraining(cfg)
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
    state[TIED[0]], state[TIED[1]] = state["bert.embeddings.word_embeddings.weight"], state["cls.predictions.bias"]
    model.load_state_dict(state, strict=True)
    model = model.double().eval()
    ids, seg, attn, labels, nsp = batch
    with torch.no_grad():
        x, pooled = model.bert(ids, seg, attn)
        keep = labels != -100
        mlm = torch.nn.functional.cross_entropy(model.cls.predictions(x[keep]), labels[keep])
        nsp_loss = torch.nn.functional.cross_entropy(model.cls.seq_relationship(pooled), nsp)
    return mlm.item(), nsp_loss.item(), int(keep.sum())


def train_settings(corpus):
    sets = {"data.corpus": corpus, "data.mask_prob": MASK_PROB, "data.max_predictions": MAX_PREDICTIONS,
            "train.steps": 1, "train.batch_size": BATCH, "train.seed": SEED, "checkpoint.every": 1,
            "log.eval_every": 0, "log.samples": "true", "model.hidden_dropout_prob": 0,
            "model.attention_probs_dropout_prob": 0}
    return sets


def train_argv(ddpt, ini, init, run_dir, sets):
    argv = [ddpt, "train", ini, "--init", init, "--run-dir", run_dir, "--threads", "1"]
    for k, v in sets.items():
        argv += ["--set", "%s=%s" % (k, v)]
    return argv


def check_start(ddpt, d, what, init, corpus, weights, cfg, vocab_text):
    ini = os.path.join(d, "continue.ini")
    write_text(ini, "[optim]\nlr = 1e-4\n")
    run_dir = os.path.join(d, "run-" + what.replace(" ", "-"))
    run(*train_argv(ddpt, ini, init, run_dir, train_settings(corpus)))
    with open(os.path.join(run_dir, "config.ini")) as f:
        written = f.read()
    for line in ["preset = \n"] + ["%s = %s\n" % kv for kv in MODEL.items()]:
        if line not in written:
            fail("%s: config.ini lacks %r (the model is --init's)" % (what, line))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        first = json.loads(f.readline())
    if first["step"] != 1:
        fail("%s: metrics.jsonl starts at step %s" % (what, first["step"]))
    mlm, nsp, predicted = torch_losses(weights, cfg, step1_batch(ddpt, corpus, run_dir))
    for key, want in (("mlm_loss", mlm), ("nsp_loss", nsp), ("loss", mlm + nsp)):
        if abs(first[key] - want) > TOL * abs(want):
            fail("%s: step 1 %s is %.9g in ddpt, %.9g for the imported model in PyTorch (relative %.2e > %g)"
                 % (what, key, first[key], want, abs(first[key] - want) / abs(want), TOL))
    ckpt = os.path.join(run_dir, "ckpt-00000001.h5")
    with h5py.File(ckpt, "r") as f:
        recorded = f.attrs["vocab"].decode() if "vocab" in f.attrs else None
    if recorded != vocab_text:
        fail("%s: %s does not record the vocab (attribute vocab %s)" % (what, ckpt, "absent" if recorded is None
                                                                         else "differs from vocab.txt"))
    print("--init %-19s step 1 on %d sequences, %d predicted tokens: mlm %.7f (PyTorch %.7f), nsp %.7f (%.7f), "
          "max relative %.1e; ckpt-00000001.h5 records the vocab"
          % (what + ":", BATCH, predicted, first["mlm_loss"], mlm, first["nsp_loss"], nsp,
             max(abs(first["mlm_loss"] - mlm) / mlm, abs(first["nsp_loss"] - nsp) / nsp)))


def expect_one_line(argv, what, want_rc, needles):
    """argv fails with exit want_rc (any non-zero if None) and a first stderr
    line holding every needle; with want_rc None, stderr is that one line."""
    p = subprocess.run(argv, capture_output=True, text=True)
    lines = p.stderr.splitlines()
    if p.returncode == 0 or (want_rc is not None and p.returncode != want_rc):
        fail("%s: exit %d, want %s" % (what, p.returncode, want_rc or "non-zero"))
    if not lines or (want_rc is None and len(lines) != 1):
        fail("%s: %d lines on stderr, want 1:\n%s" % (what, len(lines), p.stderr))
    missing = [n for n in needles if n not in lines[0]]
    if missing:
        fail("%s: '%s' does not name %s" % (what, lines[0], missing))
    print("refused, %s: exit %d: %s" % (what, p.returncode, lines[0]))


def main():
    ddpt = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ddpt-train-init-") as d:
        vocab = SPECIAL + sorted(set(WORDS))
        vocab_text = "\n".join(vocab) + "\n"
        cfg = ref.Config(vocab_size=len(vocab), **MODEL)
        weights = random_bert(cfg, 11)

        hf = os.path.join(d, "hf")
        os.makedirs(hf)
        st.write(os.path.join(hf, "model.safetensors"), weights, "F32")
        write_text(os.path.join(hf, "config.json"), json.dumps(
            dict(cfg.to_json(), architectures=["BertForPreTraining"], model_type="bert", pad_token_id=0)))
        write_text(os.path.join(hf, "vocab.txt"), vocab_text)
        tf_dir = os.path.join(d, "tf")
        os.makedirs(tf_dir)
        prefix, _, _, _ = tfw.write_google_bert(tf_dir, weights, cfg, vocab)
        tf_h5 = os.path.join(d, "tf.h5")
        run(ddpt, "import", prefix, "--out", tf_h5)

        text = os.path.join(d, "text.txt")
        write_text(text, documents(5))
        corpus = os.path.join(d, "corpus")
        run(ddpt, "shard", "--vocab", os.path.join(hf, "vocab.txt"), "--out", corpus, "--shards", "2",
            "--seq-len", str(SEQ_LEN), "--format", "docs", "--seed", "1", "--nsp", text)

        check_start(ddpt, d, "HF directory", hf, corpus, weights, cfg, vocab_text)
        check_start(ddpt, d, "TF prefix", prefix, corpus, weights, cfg, vocab_text)
        check_start(ddpt, d, "TF imported .h5", tf_h5, corpus, weights, cfg, vocab_text)

        ini = os.path.join(d, "continue.ini")
        sets = dict(train_settings(corpus), **{"model.hidden_size": 64})
        expect_one_line(train_argv(ddpt, ini, hf, os.path.join(d, "bad-size"), sets),
                        "[model] hidden_size 64 against --init's 32", None, ["hidden_size", "64", "32"])

        other = os.path.join(d, "other-vocab.txt")
        words = sorted(set(WORDS))
        random.Random(2).shuffle(words)
        write_text(other, "\n".join(SPECIAL + words) + "\n")
        other_corpus = os.path.join(d, "other-corpus")
        run(ddpt, "shard", "--vocab", other, "--out", other_corpus, "--shards", "2", "--seq-len", str(SEQ_LEN),
            "--format", "docs", "--seed", "1", "--nsp", text)
        expect_one_line(train_argv(ddpt, ini, hf, os.path.join(d, "bad-vocab"), train_settings(other_corpus)),
                        "a corpus sharded with a permuted vocab", None, ["vocab", other_corpus])

        expect_one_line([ddpt, "train", "--resume", os.path.join(d, "run-HF-directory"), "--init", hf],
                        "--init with --resume", 2, ["--init", "--resume"])
    print("train_init_check: ok")


if __name__ == "__main__":
    main()
