"""safetensors read and written in Python for the interchange test, from the
format's public description (https://github.com/huggingface/safetensors,
README "Format"), not from ddpt's C code:

  8 bytes      N, the header's length, unsigned little-endian
  N bytes      a JSON object {"name": {"dtype": "F32", "shape": [2, 3],
               "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
               (may end in spaces; HuggingFace pads it to 8-byte alignment)
  the rest     the byte buffer: every tensor row-major little-endian at
               [begin, end) of it, the offsets relative to the buffer, covering
               it entirely, with no holes and no overlaps.
"""
import json
import struct

import numpy as np

# dtype string -> (numpy type of the stored bits, bytes per element)
STORED = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2), "I64": ("<i8", 8)}


def header(path):
    """(N, the header's dict with __metadata__, the byte buffer's length) of the file at path."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack_from("<Q", data, 0)
    return n, json.loads(data[8:8 + n]), len(data) - 8 - n


def read(path):
    """{name: numpy array} of the file at path: F32, F16 and BF16 as float32
    (exactly: both widen without rounding), I64 as int64. Raises ValueError
    naming the tensor for a header that breaks the format's rules."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: %d bytes, shorter than the 8-byte header length" % (path, len(data)))
    (n,) = struct.unpack_from("<Q", data, 0)
    if 8 + n > len(data):
        raise ValueError("%s: header length %d past the end of the file" % (path, n))
    head = json.loads(data[8:8 + n])
    head.pop("__metadata__", None)
    buf = memoryview(data)[8 + n:]
    out, covered = {}, []
    for name, t in head.items():
        if t["dtype"] not in STORED:
            raise ValueError("%s: %s: unknown dtype %r" % (path, name, t["dtype"]))
        kind, size = STORED[t["dtype"]]
        begin, end = t["data_offsets"]
        count = int(np.prod(t["shape"], dtype=np.int64))
        if not 0 <= begin <= end <= len(buf) or end - begin != count * size:
            raise ValueError("%s: %s: data_offsets %s do not hold %s %s" % (path, name, [begin, end],
                                                                           t["dtype"], t["shape"]))
        a = np.frombuffer(buf[begin:end], dtype=kind).reshape(t["shape"])
        if t["dtype"] == "BF16":  # bfloat16 is float32's top half
            a = (a.reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(t["shape"])
        out[name] = a.astype(np.float32 if kind != "<i8" else np.int64)
        covered.append((begin, end, name))
    at = 0
    for begin, end, name in sorted(covered):
        if begin != at:
            raise ValueError("%s: %s starts at %d, the tensors before it end at %d (a %s)"
                             % (path, name, begin, at, "gap" if begin > at else "overlap"))
        at = end
    if at != len(buf):
        raise ValueError("%s: tensors end at %d of a %d-byte buffer" % (path, at, len(buf)))
    return out


def bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, rounded to nearest, ties to even
    (as torch's .to(torch.bfloat16)); NaN stays a quiet NaN."""
    a = np.asarray(a, dtype=np.float32)
    u = a.reshape(-1).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(a.reshape(-1)), np.uint16(0x7FC0), r).reshape(a.shape)


def rounded(a, dtype):
    """float32 array a as stored in dtype ("F32", "BF16", "F16") and read back, as float32."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "BF16":
        return (bf16_bits(a).reshape(-1).astype(np.uint32) << 16).view(np.float32).reshape(a.shape)
    if dtype == "F16":
        with np.errstate(over="ignore"):  # beyond 65504 is inf, as in torch
            return a.astype(np.float16).astype(np.float32)  # IEEE conversion: nearest, ties to even
    return a


def _numpy(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def write(path, tensors, dtype="F32"):
    """Write {name: torch tensor or numpy array} to path: floating tensors as
    dtype ("F32", "BF16" or "F16"), integer ones as I64; in the dict's order,
    back to back; the header padded with spaces so the data starts 8-byte
    aligned; __metadata__ {"format": "pt"} as torch's save_file writes."""
    head, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        a = _numpy(t)
        if np.issubdtype(a.dtype, np.integer):
            kind, raw = "I64", a.astype("<i8").tobytes()
        elif dtype == "BF16":
            kind, raw = "BF16", bf16_bits(a).astype("<u2").tobytes()
        elif dtype == "F16":
            with np.errstate(over="ignore"):
                kind, raw = "F16", a.astype("<f2").tobytes()
        elif dtype == "F32":
            kind, raw = "F32", a.astype("<f4").tobytes()
        else:
            raise ValueError("dtype %r: give F32, BF16 or F16" % dtype)
        head[name] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(head, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
