#!/usr/bin/python3
"""Converts a PyTorch pickle checkpoint (pytorch_model.bin, written by
torch.save) into model.safetensors, which `ddpt import` reads: ddpt does not
parse Python pickles in C. Needs Debian's python3-torch only.

usage: torch_to_safetensors.py SRC [--out DIR] [--keep-dtype] [--force]

SRC is a HuggingFace directory holding pytorch_model.bin (or the shards that
pytorch_model.bin.index.json lists), or such a .bin file. Without --out,
model.safetensors is written beside it; with --out DIR (created if absent),
into DIR together with copies of config.json, vocab.txt and the tokenizer
files found beside SRC, so that DIR is a complete model directory.

As HuggingFace's save_pretrained does, a tensor stored under several names
(BERT's decoder weight is the word embeddings, its bias cls.predictions.bias)
is written once, under the name that is not a tied alias. Floating-point
tensors become F32 (exactly, for F16 and BF16) unless --keep-dtype; integer
buffers such as position_ids keep their type. The file is written under a
temporary name, synced and renamed: a failed run leaves nothing.
"""
import argparse
import inspect
import json
import os
import shutil
import struct
import sys
import tempfile

import torch

BIN, BIN_INDEX, OUT = "pytorch_model.bin", "pytorch_model.bin.index.json", "model.safetensors"
SIDE_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
              "added_tokens.json"]
# HuggingFace's BERT _tied_weights_keys (cls.predictions.decoder.*): the
# aliases it drops when saving.
TIED_ALIASES = ("predictions.decoder.weight", "predictions.decoder.bias")
DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


class Refused(Exception):
    """A one-line reason the conversion cannot go on."""


def bin_files(src):
    """(the .bin files to read, the directory holding them)."""
    if os.path.isfile(src):
        return [src], os.path.dirname(os.path.abspath(src))
    if not os.path.isdir(src):
        raise Refused("%s: no such file or directory" % src)
    if os.path.isfile(os.path.join(src, BIN)):
        return [os.path.join(src, BIN)], src
    index = os.path.join(src, BIN_INDEX)
    if os.path.isfile(index):
        try:
            weight_map = json.load(open(index))["weight_map"]
        except (ValueError, KeyError, TypeError) as e:
            raise Refused("%s: not a HuggingFace index (%s: %s)" % (index, type(e).__name__, e))
        return [os.path.join(src, f) for f in sorted(set(weight_map.values()))], src
    raise Refused("%s holds neither %s nor %s" % (src, BIN, BIN_INDEX))


def load(path):
    """The state_dict in path: {name: tensor}. weights_only refuses pickled
    code (a .bin from the Hub is untrusted input); torch before 1.13 lacks
    it, and then the file is unpickled in full, which can run code in it."""
    try:
        if "weights_only" in inspect.signature(torch.load).parameters:
            state = torch.load(path, map_location="cpu", weights_only=True)
        else:
            print("note: this torch (%s) has no weights_only: %s is unpickled in full; convert only files you "
                  "trust" % (torch.__version__, path), file=sys.stderr)
            state = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many kinds for a bad file: all are one reason here
        # weights_only's refusal is a paragraph; its reason is the last part.
        why = " ".join(str(e).split()).rpartition("WeightsUnpickler error: ")[2]
        raise Refused("%s: not a torch.save file of tensors only (%s: %s)" % (path, type(e).__name__, why))
    if not isinstance(state, dict):
        raise Refused("%s holds a %s, not a state_dict (a dict of tensors)" % (path, type(state).__name__))
    for name, t in state.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise Refused("%s: %r is of type %s, not a tensor: not a state_dict" % (path, name, type(t).__name__))
        if t.dtype not in DTYPES:
            raise Refused("%s: %s has dtype %s, which safetensors does not store" % (path, name, t.dtype))
    return state


def drop_shared(state):
    """state without the aliases: of names that are the very same view of one
    storage, the first (in name order) that is not a tied alias is kept.
    Returns (kept {name: tensor}, {dropped alias: name kept})."""
    groups = {}
    for name, t in state.items():
        # Empty tensors own no memory: their pointers say nothing.
        key = (t.data_ptr(), t.shape, t.stride(), t.dtype) if t.numel() else name
        groups.setdefault(key, []).append(name)
    kept, dropped = {}, {}
    for names in groups.values():
        names.sort(key=lambda n: (n.endswith(TIED_ALIASES), n))
        kept[names[0]] = state[names[0]]
        dropped.update({n: names[0] for n in names[1:]})
    return kept, dropped


def tensor_bytes(t, keep_dtype):
    """(dtype string, shape, little-endian row-major bytes) of t."""
    if t.is_floating_point() and not keep_dtype:
        t = t.to(torch.float32)
    t = t.detach().contiguous()
    raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t  # numpy has no bfloat16
    return DTYPES[t.dtype], list(t.shape), raw.numpy().tobytes()


def write_safetensors(path, tensors, keep_dtype):
    """Header length (8 bytes LE), the JSON header padded with spaces to
    8-byte alignment, then the tensors back to back in name order."""
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dtype, shape, data = tensor_bytes(tensors[name], keep_dtype)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return at


def convert(src, out_dir, keep_dtype, force):
    files, home = bin_files(src)
    target_dir = out_dir or home
    target = os.path.join(target_dir, OUT)
    if os.path.exists(target) and not force:
        raise Refused("%s exists: remove it or pass --force to overwrite it" % target)
    state, dropped = {}, {}
    for path in files:
        kept, gone = drop_shared(load(path))
        clash = set(kept) & set(state)
        if clash:
            raise Refused("%s: %s also in an earlier shard" % (path, sorted(clash)[0]))
        state.update(kept)
        dropped.update(gone)
    if not state:
        raise Refused("%s holds no tensors" % src)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    size = write_safetensors(target, state, keep_dtype)
    copied = []
    if out_dir and os.path.abspath(out_dir) != os.path.abspath(home):
        for name in SIDE_FILES:
            if os.path.isfile(os.path.join(home, name)):
                shutil.copyfile(os.path.join(home, name), os.path.join(out_dir, name))
                copied.append(name)
    kinds = sorted({str(t.dtype).replace("torch.", "") for t in state.values()})
    print("wrote %s: %d tensors (%.1f MB of data) from %s (%s)%s%s" % (
        target, len(state), size / 1e6, ", ".join(os.path.basename(f) for f in files), ", ".join(kinds) +
        (" kept" if keep_dtype else " read; floating point as F32"),
        "; stored once: " + ", ".join("%s = %s" % kv for kv in sorted(dropped.items())) if dropped else "",
        "; copied " + ", ".join(copied) if copied else ""))


def main():
    ap = argparse.ArgumentParser(description="pytorch_model.bin -> model.safetensors (for ddpt import)")
    ap.add_argument("src", help="a HuggingFace directory with pytorch_model.bin (or its shards), or a .bin file")
    ap.add_argument("--out", metavar="DIR", help="write model.safetensors and copies of config.json, vocab.txt and the tokenizer "
                                  "files into this directory instead of beside SRC")
    ap.add_argument("--keep-dtype", action="store_true", help="keep F16/BF16/F64 as stored (default: F32)")
    ap.add_argument("--force", action="store_true", help="overwrite an existing model.safetensors")
    a = ap.parse_args()
    if sys.byteorder != "little":
        sys.exit("torch_to_safetensors: safetensors is little-endian and this machine is not")
    try:
        convert(a.src, a.out, a.keep_dtype, a.force)
    except Refused as e:
        print("torch_to_safetensors: %s" % e, file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print("torch_to_safetensors: %s: %s" % (e.filename or a.src, e.strerror or e), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
