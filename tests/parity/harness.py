"""What the parity scripts share: a failure line that names the script
("<script>: FAIL: <message>", exit 1), and running a command that must
succeed."""
import os
import subprocess
import sys

SCRIPT = os.path.splitext(os.path.basename(sys.argv[0]))[0]
TAIL = 3000  # characters of a failed command's stdout and stderr shown: where its error is


def fail(msg):
    print(SCRIPT + ": FAIL: " + msg)
    sys.exit(1)


def run(*cmd):
    """cmd's standard output; fails naming the command, its exit code and output if it exits non-zero."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        fail("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-TAIL:], p.stderr[-TAIL:]))
    return p.stdout


def write_arena(named, index, path, what):
    """Writes the float64 reference parameters `named` (name -> tensor) as
    ddpt's float32 arena at path, laid out by index [(name, offset, shape)]
    as the C driver printed it, and copies the float32 values back into
    the reference, so that both sides run on exactly the same weights. A
    name or shape that differs from HuggingFace's fails naming it."""
    import numpy as np
    import torch
    if sorted(named) != sorted(n for n, _, _ in index):
        differ = set(named) ^ set(n for n, _, _ in index)
        fail("%s: parameter names differ from HuggingFace's: %s" % (what, sorted(differ)))
    arena = np.zeros(sum(int(np.prod(s)) for _, _, s in index), dtype=np.float32)
    for n, off, shape in index:
        t = named[n]
        if tuple(t.shape) != shape:
            fail("%s: %s has shape %s, PyTorch %s" % (what, n, shape, tuple(t.shape)))
        arena[off:off + t.numel()] = t.detach().float().numpy().ravel()
    arena.tofile(path)
    with torch.no_grad():
        for n, off, shape in index:
            named[n].copy_(torch.from_numpy(arena[off:off + named[n].numel()].astype(np.float64)).view(shape))
