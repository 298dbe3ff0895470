#!/usr/bin/python3
"""PyTorch parity of ddpt's fine-tuning heads (trainer/heads.h), on the same
numbers, run by heads_parity.c:

- classifier + cross-entropy: torch.nn.functional.linear, then
  cross_entropy(ignore_index=-100), mean over the labelled rows: the loss,
  the probabilities, and the gradients of the input, classifier.weight and
  classifier.bias;
- the CRF: a pytorch-crf style NLL (start + emissions + transitions + end,
  log-partition by torch.logsumexp) over the labelled positions of each
  sequence, mean over the sequences with any, differentiated by autograd:
  the NLL and the gradients of the emissions, crf.transitions,
  crf.start_transitions and crf.end_transitions; Viterbi decoding by
  torch's max over the same recursion.

The reference runs in float64; ddpt in float32. The losses agree within
1e-5 relative, the gradients within 1e-5 of each gradient's norm, the
probabilities within 1e-6, and the decoded paths exactly.

usage: heads_parity.py PATH/TO/heads_parity
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import fail  # noqa: E402

IGNORE = -100
LOSS_TOL = 1e-5
GRAD_TOL = 1e-5
PROB_TOL = 1e-6

CASES = [  # N, H, K, B, T, KC, fraction of positions ignored
    (7, 16, 3, 3, 6, 4, 0.3),
    (12, 32, 5, 4, 9, 7, 0.5),
    (5, 8, 2, 2, 12, 9, 0.0),
]


def crf_reference(logits, labels, trans, start, end):
    """Mean NLL over the sequences with a labelled position, and the Viterbi
    path of each (as a (B, T) array, -100 off the chains)."""
    total, count = 0.0, 0
    paths = np.full(labels.shape, IGNORE, dtype=np.int64)
    for b in range(labels.shape[0]):
        pos = [t for t in range(labels.shape[1]) if labels[b, t] != IGNORE]
        if not pos:
            continue
        e = logits[b, pos]  # (n, K): the compacted chain
        y = torch.tensor([int(labels[b, t]) for t in pos])
        gold = start[y[0]] + e[torch.arange(len(pos)), y].sum() + end[y[-1]]
        gold = gold + sum(trans[y[t - 1], y[t]] for t in range(1, len(pos)))
        alpha = start + e[0]
        for t in range(1, len(pos)):
            alpha = torch.logsumexp(alpha[:, None] + trans, dim=0) + e[t]
        total = total + torch.logsumexp(alpha + end, dim=0) - gold
        count += 1
        with torch.no_grad():
            delta, back = start + e[0], []
            for t in range(1, len(pos)):
                s, arg = (delta[:, None] + trans).max(dim=0)
                back.append(arg)
                delta = s + e[t]
            tag = int((delta + end).argmax())
            best = [tag]
            for arg in reversed(back):
                tag = int(arg[tag])
                best.append(tag)
            for t, v in zip(pos, reversed(best)):
                paths[b, t] = v
    return total / max(count, 1), paths


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12)


def run_case(exe, tmp, case, seed):
    N, H, K, B, T, KC, holes = case
    rng = np.random.default_rng(seed)
    cls_labels = rng.integers(0, K, N).astype(np.int32)
    cls_labels[rng.random(N) < 0.25] = IGNORE
    crf_labels = rng.integers(0, KC, (B, T)).astype(np.int32)
    crf_labels[rng.random((B, T)) < holes] = IGNORE
    if B > 2:
        crf_labels[0, :] = IGNORE  # a sequence with no chain: adds nothing, not counted
    f32 = lambda *shape: (rng.standard_normal(shape)).astype(np.float32)  # noqa: E731
    x, w, b = f32(N, H), f32(K, H) * 0.3, f32(K)
    logits, trans, start, end = f32(B, T, KC) * 2, f32(KC, KC), f32(KC), f32(KC)
    with open(os.path.join(tmp, "in.bin"), "wb") as f:
        np.array([N, H, K, B, T, KC], np.int32).tofile(f)
        cls_labels.tofile(f)
        crf_labels.tofile(f)
        for a in (x, w, b, logits, trans, start, end):
            a.tofile(f)
    p = subprocess.run([exe, tmp], capture_output=True, text=True)
    if p.returncode != 0:
        fail("heads_parity exited %d: %s" % (p.returncode, p.stderr))
    out = np.fromfile(os.path.join(tmp, "out.f32"), np.float32)
    sizes = [("ce", 2), ("probs", N * K), ("dx", N * H), ("dw", K * H), ("db", K), ("nll", 1),
             ("dlogits", B * T * KC), ("dtrans", KC * KC), ("dstart", KC), ("dend", KC),
             ("paths", B * T)]
    if out.size != sum(n for _, n in sizes):
        fail("out.f32 holds %d floats, expected %d" % (out.size, sum(n for _, n in sizes)))
    got, at = {}, 0
    for name, n in sizes:
        got[name], at = out[at:at + n], at + n

    t = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=True)  # noqa: E731
    tx, tw, tb = t(x), t(w), t(b)
    lg = torch.nn.functional.linear(tx, tw, tb)
    ce = torch.nn.functional.cross_entropy(lg, torch.tensor(cls_labels, dtype=torch.int64),
                                           ignore_index=IGNORE)
    ce.backward()
    labelled = cls_labels != IGNORE
    correct = int((lg.argmax(dim=1).numpy() == cls_labels)[labelled].sum())
    tl, tt, ts, te = t(logits), t(trans), t(start), t(end)
    nll, paths = crf_reference(tl, crf_labels, tt, ts, te)
    nll.backward()

    name = "case N=%d K=%d B=%d T=%d KC=%d" % (N, K, B, T, KC)
    checks = [
        ("cross-entropy loss", rel(got["ce"][0], ce.item()), LOSS_TOL),
        ("probabilities", np.abs(got["probs"] - torch.softmax(lg, 1).detach().numpy().ravel()).max(), PROB_TOL),
        ("d input", rel(got["dx"], tx.grad), GRAD_TOL),
        ("d classifier.weight", rel(got["dw"], tw.grad), GRAD_TOL),
        ("d classifier.bias", rel(got["db"], tb.grad), GRAD_TOL),
        ("CRF nll", rel(got["nll"][0], nll.item()), LOSS_TOL),
        ("d emissions", rel(got["dlogits"], tl.grad), GRAD_TOL),
        ("d crf.transitions", rel(got["dtrans"], tt.grad), GRAD_TOL),
        ("d crf.start_transitions", rel(got["dstart"], ts.grad), GRAD_TOL),
        ("d crf.end_transitions", rel(got["dend"], te.grad), GRAD_TOL),
    ]
    for what, err, tol in checks:
        if not err < tol:
            fail("%s: %s differs from PyTorch by %.3g (tolerance %g)" % (name, what, err, tol))
    if int(got["ce"][1]) != correct:
        fail("%s: %d rows correct, PyTorch says %d" % (name, int(got["ce"][1]), correct))
    if not np.array_equal(got["paths"].astype(np.int64), paths.ravel()):
        fail("%s: Viterbi paths differ:\nddpt  %s\ntorch %s" % (name, got["paths"], paths.ravel()))
    return max(e / tol for _, e, tol in checks)


def main():
    if len(sys.argv) != 2:
        fail("usage: heads_parity.py PATH/TO/heads_parity")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(CASES):
            worst = max(worst, run_case(sys.argv[1], tmp, case, 1000 + i))
    print("heads_parity: OK (%d cases; worst error %.2f of its tolerance)" % (len(CASES), worst))


if __name__ == "__main__":
    main()
