#!/usr/bin/python3
"""A checkpoint written by ddpt reads back in h5py and h5dump.

Runs tests/parity/ckpt_write_sample.c (path given as argv[1]) into a fresh
run directory, then checks with h5py: LATEST names the file; the root
attributes (strings fixed-length, read as bytes); every /params, /optim/m
and /optim/v tensor has the name, the PyTorch shape and the values the
formula below gives (computed here with numpy, not read from ddpt); the
Fletcher-32 filter and chunk sizes; the int64 arrays. Finally h5dump must read the whole file.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import fail  # noqa: E402

NAMES = [
    ("bert.embeddings.word_embeddings.weight", (1000, 64)),
    ("bert.encoder.layer.0.attention.self.query.weight", (64, 64)),
    ("bert.encoder.layer.0.attention.self.query.bias", (64,)),
    ("cls.predictions.transform.LayerNorm.weight", (64,)),
    ("bert.encoder.layer.0.intermediate.dense.weight", (4096, 256)),
]


def expected(k, shape):
    i = np.arange(int(np.prod(shape)), dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(k * 97)) & np.uint64(0xFFFFFFFF)
    v = (h % np.uint64(20011)).astype(np.int64) - 10005
    return (v.astype(np.float64) / 1024.0).astype(np.float32).reshape(shape)


def main():
    writer = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ddpt-ckpt-h5py-") as run:
        subprocess.run([writer, run], check=True)
        latest = open(os.path.join(run, "LATEST")).read()
        if latest != "ckpt-00001500.h5\n":
            fail("LATEST holds %r" % latest)
        path = os.path.join(run, latest.strip())
        with h5py.File(path, "r") as f:
            a = f.attrs
            want = {"format": "ddpt-checkpoint", "format_version": 1, "step": 1500,
                    "tokens_seen": 123456, "world_size": 2, "seed": 2024,
                    "model_type": "bert", "config": "[model]\nhidden = 64\n"}
            for key, value in want.items():
                got = a.get(key)
                if isinstance(value, str):  # fixed-length strings: h5py gives bytes
                    got = got.decode() if isinstance(got, bytes) else got
                if got != value:
                    fail("attribute %s is %r, want %r" % (key, a.get(key), value))
            for key in ("ddpt_version", "created"):
                if not isinstance(a.get(key), bytes) or not a[key]:
                    fail("attribute %s missing or not a (fixed-length) string" % key)
            for key in a:  # none in HDF5's unchecksummed global heap (docs/checkpoint.md)
                if h5py.check_string_dtype(a.get_id(key).dtype) and h5py.check_string_dtype(
                        a.get_id(key).dtype).length is None:
                    fail("attribute %s is a variable-length string" % key)
            for g, group in enumerate(("params", "optim/m", "optim/v")):
                if sorted(f[group].keys()) != sorted(n for n, _ in NAMES):
                    fail("/%s holds %s" % (group, sorted(f[group].keys())))
                for k, (name, shape) in enumerate(NAMES):
                    d = f[group][name]
                    if d.shape != shape or d.dtype != np.float32:
                        fail("/%s/%s is %s %s" % (group, name, d.dtype, d.shape))
                    if not d.fletcher32 or d.chunks is None:
                        fail("/%s/%s is not chunked with Fletcher-32" % (group, name))
                    if np.prod(d.chunks) * 4 > 4 << 20:
                        fail("/%s/%s has %s-element chunks" % (group, name, d.chunks))
                    got = d[()]
                    want_v = expected(k + 10 * g, shape)
                    if not np.array_equal(got.view(np.uint32), want_v.view(np.uint32)):
                        bad = np.argwhere(got != want_v)[0]
                        fail("/%s/%s differs at %s" % (group, name, tuple(bad)))
            cursor = f["data/cursor"][()]
            want_c = np.array([[s, 3, 100 + s] for s in range(4)], dtype=np.int64)
            if cursor.dtype != np.int64 or not np.array_equal(cursor, want_c):
                fail("/data/cursor is %r" % cursor)
            if list(f["rng/dropout"][()]) != [42, 7]:
                fail("/rng/dropout is %r" % f["rng/dropout"][()])
        dump = subprocess.run(["h5dump", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if dump.returncode != 0:
            fail("h5dump exits %d: %s" % (dump.returncode, dump.stderr.decode()[:500]))
    print("ckpt_h5py_check: ok (%d tensors x 3 groups, attributes, arrays; h5dump reads it)" % len(NAMES))


if __name__ == "__main__":
    main()
