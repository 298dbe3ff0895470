#!/usr/bin/python3
"""PyTorch parity of ddpt's fine-tuning models: the same weights and the same
padded, labelled batch, dropout off, through BertForSequenceClassification,
BertForTokenClassification and BertForTokenClassification with a CRF
(bert_reference.py, HuggingFace's names; the CRF with pytorch-crf's score),
run in float64. ddpt (task_parity.c, float32) must give

- every parameter name and shape of the reference, and no other;
- the loss within 1e-5 relative, and the same number of labelled units;
- the logits within 1e-5 of the largest logit's magnitude (at least 1);
- the decoded tags (argmax, or Viterbi with the CRF) exactly;
- every parameter's gradient within 1e-4 relative to that gradient's norm
  (as tests/parity/model_parity.py).

Classification runs the last encoder layer at the [CLS] rows only, so this
also checks that pruning against the full reference.

usage: task_parity.py PATH/TO/task_parity
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
from harness import write_arena  # noqa: E402

LOSS_TOL = 1e-5
LOGIT_TOL = 1e-5
GRAD_TOL = 1e-4
IGNORE = -100

TINY = dict(ref.preset("bert-tiny").__dict__)
SMALL2 = dict(ref.preset("bert-small").__dict__, num_hidden_layers=2)
CASES = [  # name, config, task (classify | tag | crf), labels, batch, seq_len
    ("bert-tiny", TINY, "classify", 3, 3, 24),
    ("bert-tiny", TINY, "tag", 5, 3, 24),
    ("bert-tiny", TINY, "crf", 5, 3, 24),
    ("bert-small-2layer", SMALL2, "classify", 4, 2, 16),
    ("bert-small-2layer", SMALL2, "tag", 3, 2, 16),
    ("bert-small-2layer", SMALL2, "crf", 3, 2, 16),
]


def read_index(path):
    index = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            nd = int(parts[2])
            index.append((parts[0], int(parts[1]), tuple(int(x) for x in parts[3:3 + nd])))
    return index


def make_labels(task, K, mask, g):
    """Classification: a label per sequence, the second one ignored (-100).
    Tagging: about 70% of the positions between [CLS] and the last token
    labelled (first pieces), the rest -100; with 3 or more sequences the
    last is unlabelled (an empty CRF chain)."""
    B, L = mask.shape
    if task == "classify":
        labels = torch.randint(0, K, (B,), generator=g)
        labels[1] = IGNORE
        return labels
    labels = torch.full((B, L), IGNORE, dtype=torch.long)
    for b in range(B if B < 3 else B - 1):
        n = int(mask[b].sum())
        pick = torch.rand(n, generator=g) < 0.7
        pick[0] = pick[n - 1] = False
        pick[1] = True
        labels[b, :n][pick] = torch.randint(0, K, (int(pick.sum()),), generator=g)
    return labels


def run_case(exe, name, over, task, K, batch, seq_len, tmp):
    c = ref.Config(**over)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(c.to_json(), f)
    subprocess.run([exe, "index", tmp, task, str(K)], check=True)
    index = read_index(os.path.join(tmp, "index.txt"))

    torch.manual_seed(4321)
    if task == "classify":
        model = ref.BertForSequenceClassification(c, K)
    else:
        model = ref.BertForTokenClassification(c, K, crf=task == "crf")
    ref.init_weights(model)
    with torch.no_grad():  # non-trivial biases, gains and head, so every path is exercised
        for n, p in model.named_parameters():
            if n.startswith("crf."):
                p.normal_(0.0, 0.5)
            elif n.startswith("classifier."):
                p.normal_(0.0, 0.3)
            elif n.endswith("bias"):
                p.normal_(0.0, 0.02)
            elif "LayerNorm" in n:
                p.normal_(1.0, 0.1)
    model = model.double()
    named = dict(model.named_parameters())
    write_arena(named, index, os.path.join(tmp, "params.f32"), "%s %s" % (name, task))

    g = torch.Generator().manual_seed(77)
    ids, seg, mask, _, _ = ref.synthetic_batch(c, batch, seq_len, g)
    labels = make_labels(task, K, mask, g)
    head = np.array([batch, seq_len], dtype=np.int32)
    body = [t.numpy().astype(np.int32).ravel() for t in (ids, seg, mask, labels)]
    np.concatenate([head] + body).tofile(os.path.join(tmp, "batch.i32"))
    subprocess.run([exe, "run", tmp, task, str(K)], check=True)

    model.eval()
    loss, logits = model(ids, seg, mask, labels)
    loss.backward()
    with open(os.path.join(tmp, "loss.txt")) as f:
        parts = f.read().split()
    ddpt_loss, ddpt_count = float(parts[0]), int(parts[2])
    if task == "classify":
        want_count = int((labels != IGNORE).sum())
    elif task == "tag":
        want_count = int((labels != IGNORE).sum())
    else:
        want_count = sum(1 for pos in ref.CRF.chains(labels) if pos)
    ours_logits = np.fromfile(os.path.join(tmp, "logits.f32"), dtype=np.float32).astype(np.float64)
    ref_logits = logits.detach().numpy().ravel()
    if ours_logits.size == ref_logits.size:
        logit_err = float(np.abs(ours_logits - ref_logits).max()) / max(1.0, float(np.abs(ref_logits).max()))
    else:
        logit_err = np.inf

    failures = []
    loss_rel = abs(ddpt_loss - loss.item()) / abs(loss.item())
    if loss_rel > LOSS_TOL:
        failures.append(f"loss rel {loss_rel:.3g}")
    if ddpt_count != want_count:
        failures.append(f"{ddpt_count} labelled units, reference {want_count}")
    if logit_err > LOGIT_TOL:
        failures.append(f"logits off by {logit_err:.3g}")
    decode_note = ""
    if task != "classify":
        ours = np.fromfile(os.path.join(tmp, "decode.i32"), dtype=np.int32)
        want = model.decode(logits.detach(), labels).numpy().ravel()
        wrong = int((ours != want).sum())
        decode_note = f"; decoded {int((want != IGNORE).sum())} tags, {wrong} differ"
        if wrong:
            failures.append(f"{wrong} decoded tags differ")

    grads = np.fromfile(os.path.join(tmp, "grads.f32"), dtype=np.float32)
    # The key bias's true gradient is zero: every norm is floored at 1e-6 of
    # the whole gradient's norm (see model_parity.py).
    floor = 1e-6 * np.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in named.values()))
    worst, worst_name = 0.0, ""
    for n, off, shape in index:
        ref_g = named[n].grad.detach().numpy().ravel()
        ours = grads[off:off + ref_g.size].astype(np.float64)
        rel = np.linalg.norm(ours - ref_g) / max(np.linalg.norm(ref_g), floor)
        if rel > worst and not n.endswith("key.bias"):
            worst, worst_name = rel, n
        if rel > GRAD_TOL:
            failures.append(f"gradient of {n}: {rel:.3g}")
    kind = {"classify": "sequence classification", "tag": "token classification",
            "crf": "token classification + CRF"}[task]
    print(f"{name} {kind}, {K} labels, batch {batch}x{seq_len} (padded): loss {ddpt_loss:.8f} vs "
          f"{loss.item():.8f} (rel {loss_rel:.2e}) over {ddpt_count}; logits rel {logit_err:.2e}"
          f"{decode_note}; worst gradient rel {worst:.2e} ({worst_name})")
    if failures:
        print(f"  FAILED: {failures}")
    return not failures


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    exe = os.path.abspath(sys.argv[1])
    torch.set_num_threads(2)
    ok = True
    for case in CASES:
        with tempfile.TemporaryDirectory(prefix="ddpt-task-parity-") as tmp:
            ok &= run_case(exe, *case, tmp)
    print("task parity: " + ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
