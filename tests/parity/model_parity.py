#!/usr/bin/python3
"""PyTorch parity of ddpt's BERT: the same weights and the same padded batch,
dropout off, give the same loss (within 1e-5 relative) and every parameter's
gradient (within 1e-4 relative to that gradient's norm) as the reference
BERT in bert_reference.py, run in float64.

usage: model_parity.py PATH/TO/model_parity
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
GRAD_TOL = 1e-4

CASES = [  # name, config overrides, nsp, batch, seq_len
    ("bert-tiny", dict(ref.preset("bert-tiny").__dict__), True, 3, 24),
    ("bert-tiny", dict(ref.preset("bert-tiny").__dict__), False, 3, 24),
    ("bert-small-2layer", dict(ref.preset("bert-small").__dict__, num_hidden_layers=2), True, 2, 16),
    ("bert-small-2layer", dict(ref.preset("bert-small").__dict__, num_hidden_layers=2), False, 2, 16),
]


def run_case(exe, name, over, nsp, batch, seq_len, tmp):
    c = ref.Config(**over)
    kind = "nsp" if nsp else "mlm"
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(c.to_json(), f)
    subprocess.run([exe, "index", tmp, kind], check=True)
    index = []
    with open(os.path.join(tmp, "index.txt")) as f:
        for line in f:
            parts = line.split()
            nd = int(parts[2])
            index.append((parts[0], int(parts[1]), tuple(int(x) for x in parts[3:3 + nd])))

    torch.manual_seed(1234)
    model = (ref.BertForPreTraining if nsp else ref.BertForMaskedLM)(c)
    ref.init_weights(model)
    with torch.no_grad():  # non-trivial biases and gains, so their paths are exercised
        for n, p in model.named_parameters():
            if n.endswith("bias"):
                p.normal_(0.0, 0.02)
            elif "LayerNorm" in n:
                p.normal_(1.0, 0.1)
    model = model.double()
    named = dict(model.named_parameters())
    write_arena(named, index, os.path.join(tmp, "params.f32"), name)

    g = torch.Generator().manual_seed(99)
    ids, seg, mask, labels, nsp_labels = ref.synthetic_batch(c, batch, seq_len, g)
    ddpt_labels = torch.where(labels < 0, torch.full_like(labels, -1), labels)
    head = np.array([batch, seq_len], dtype=np.int32)
    body = [t.numpy().astype(np.int32).ravel() for t in (ids, seg, mask, ddpt_labels, nsp_labels)]
    np.concatenate([head] + body).tofile(os.path.join(tmp, "batch.i32"))
    subprocess.run([exe, "run", tmp, kind], check=True)

    model.eval()
    loss = model(ids, seg, mask, labels, nsp_labels)
    loss.backward()
    with open(os.path.join(tmp, "loss.txt")) as f:
        ddpt_loss = float(f.read().split()[0])
    grads = np.fromfile(os.path.join(tmp, "grads.f32"), dtype=np.float32)
    loss_rel = abs(ddpt_loss - loss.item()) / abs(loss.item())
    worst, worst_name = 0.0, ""
    failures = []
    # The key bias's true gradient is zero (softmax ignores a per-row constant):
    # a norm relative to itself is meaningless there, so every norm is floored
    # at 1e-6 of the whole gradient's norm.
    floor = 1e-6 * np.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in named.values()))
    for n, off, shape in index:
        ref_g = named[n].grad.detach().numpy().ravel()
        ours = grads[off:off + ref_g.size].astype(np.float64)
        rel = np.linalg.norm(ours - ref_g) / max(np.linalg.norm(ref_g), floor)
        if rel > worst and not n.endswith("key.bias"):
            worst, worst_name = rel, n
        if rel > GRAD_TOL:
            failures.append(f"{n}: {rel:.3g}")
    label = f"{name} {'with' if nsp else 'without'} NSP, batch {batch}x{seq_len} (padded)"
    print(f"{label}: loss {ddpt_loss:.8f} vs {loss.item():.8f} (rel {loss_rel:.2e}); "
          f"worst gradient rel {worst:.2e} ({worst_name}; key biases, whose true "
          f"gradient is 0, checked against the floor)")
    ok = loss_rel <= LOSS_TOL and not failures
    if not ok:
        print(f"  FAILED: loss rel {loss_rel:.3g} (tol {LOSS_TOL}); gradients over {GRAD_TOL}: {failures}")
    return ok


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    exe = os.path.abspath(sys.argv[1])
    torch.set_num_threads(2)
    ok = True
    for case in CASES:
        with tempfile.TemporaryDirectory(prefix="ddpt-parity-") as tmp:
            ok &= run_case(exe, *case, tmp)
    print("model parity: " + ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
