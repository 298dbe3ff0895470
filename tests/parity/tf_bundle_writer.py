"""A TensorFlow tensor bundle (the checkpoint format of Google's BERT
releases, bert_model.ckpt.index + .data-0000S-of-0000N) written in Python
for the interchange test, from the format's public sources, not from ddpt's
C code: TensorFlow's tensor_bundle.proto / tensor_bundle.cc (what the index
holds), tensor_shape.proto and types.proto, its lib/io table_builder.cc,
block_builder.cc and format.cc, and LevelDB's doc/table_format.md (the table
those are a copy of).

PREFIX.index is a table of sorted key -> value pairs:
  data blocks    each entry varint32 shared key bytes, varint32 unshared,
                 varint32 value length, the unshared key bytes, the value;
                 the key shares no bytes at a restart point (every 16th entry);
                 after the entries the restart offsets (fixed32 each) and
                 their count (fixed32)
  metaindex      an empty block (no filter)
  index          one entry per data block: a key >= its last key and < the
                 next block's first, value the block's handle (varint64
                 offset, varint64 size)
  footer         metaindex handle, index handle, zeros to 40 bytes, the
                 fixed64 magic 0xdb4775248b80fb57
Every block is followed by a 5-byte trailer: the compression type (0, none)
and the masked CRC32C of the block and that type byte.
Key "" holds a BundleHeaderProto; every other key is a tensor's name and
holds a BundleEntryProto locating its little-endian bytes in a data file,
with the masked CRC32C of those bytes.
"""
import json
import os
import struct

import numpy as np

MAGIC = 0xdb4775248b80fb57
MASK_DELTA = 0xa282ead8
DT = {np.dtype("float32"): 1, np.dtype("float64"): 2, np.dtype("int32"): 3, np.dtype("int64"): 9,
      np.dtype("float16"): 19}  # types.proto DataType; DT_BFLOAT16 (14) has no numpy type here


def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli, reflected
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data, crc=0):
    """CRC-32C of data, continuing from crc (0 to start)."""
    crc ^= 0xFFFFFFFF
    table = CRC_TABLE
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def mask(crc):
    """LevelDB's and TensorFlow's stored form of a CRC: rotated right 15, plus a constant."""
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# protobuf wire format, proto3: a zero scalar is not written
def pb_varint(field, n):
    return varint(field << 3) + varint(n) if n else b""


def pb_bytes(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


def pb_fixed32(field, n):
    return varint(field << 3 | 5) + struct.pack("<I", n) if n else b""


def header_proto(num_shards):
    """BundleHeaderProto: num_shards = 1, endianness = 2 (LITTLE = 0, so
    absent), version = 3 (VersionDef producer = 1: kTensorBundleVersion)."""
    return pb_varint(1, num_shards) + pb_bytes(3, pb_varint(1, 1))


def entry_proto(dtype, shape, shard_id, offset, size, crc):
    """BundleEntryProto: dtype 1, shape 2 (TensorShapeProto: dim 2, each
    Dim{size 1}; a scalar's is present and empty), shard_id 3, offset 4,
    size 5, crc32c 6 (fixed32, masked)."""
    dims = b"".join(pb_bytes(2, pb_varint(1, d)) for d in shape)
    return (pb_varint(1, dtype) + pb_bytes(2, dims) + pb_varint(3, shard_id) + pb_varint(4, offset)
            + pb_varint(5, size) + pb_fixed32(6, crc))


class Block:
    """block_builder.cc: prefix-compressed entries, a restart every `interval`."""

    def __init__(self, interval):
        self.interval, self.buf, self.restarts, self.count, self.last = interval, bytearray(), [0], 0, b""

    def add(self, key, value):
        shared = 0
        if self.count < self.interval:
            while shared < min(len(key), len(self.last)) and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        self.last, self.count = key, self.count + 1

    def size(self):
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self):
        return bytes(self.buf) + b"".join(struct.pack("<I", r) for r in self.restarts) \
            + struct.pack("<I", len(self.restarts))


def separator(start, limit):
    """The bytewise comparator's FindShortestSeparator: a short key in [start, limit)."""
    i = 0
    while i < min(len(start), len(limit)) and start[i] == limit[i]:
        i += 1
    if i < min(len(start), len(limit)) and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def successor(key):
    """FindShortSuccessor: a short key >= key."""
    for i, b in enumerate(key):
        if b != 0xFF:
            return key[:i] + bytes([b + 1])
    return key


def write_table(path, items, block_size=4096, restart_interval=16):
    """Write sorted (key bytes, value bytes) pairs as an uncompressed table.
    Returns (data blocks, restart points over all data blocks)."""
    out, index = bytearray(), Block(1)  # the index block restarts at every entry, as LevelDB's
    stats = [0, 0]

    def emit(block):
        contents = block.finish()
        handle = varint(len(out)) + varint(len(contents))
        out.extend(contents + b"\0" + struct.pack("<I", mask(crc32c(b"\0", crc32c(contents)))))
        return handle

    data, pending, prev = Block(restart_interval), None, None
    for key, value in items:
        if prev is not None and key <= prev:
            raise ValueError("table keys must be added in increasing order: %r after %r" % (key, prev))
        if pending is not None:
            index.add(separator(prev, key), pending)
            pending = None
        data.add(key, value)
        prev = key
        if data.size() >= block_size:
            stats[0], stats[1] = stats[0] + 1, stats[1] + len(data.restarts)
            pending, data = emit(data), Block(restart_interval)
    if data.count:
        stats[0], stats[1] = stats[0] + 1, stats[1] + len(data.restarts)
        pending = emit(data)
    if pending is not None:
        index.add(successor(prev), pending)
    meta_handle = emit(Block(restart_interval))
    index_handle = emit(index)
    footer = meta_handle + index_handle
    out += footer + b"\0" * (40 - len(footer)) + struct.pack("<Q", MAGIC)
    with open(path, "wb") as f:
        f.write(out)
    return tuple(stats)


def data_path(prefix, shard, num_shards):
    return "%s.data-%05d-of-%05d" % (prefix, shard, num_shards)


def write_bundle(prefix, tensors, num_shards=1, block_size=4096):
    """Write {name: numpy array} as the bundle PREFIX.index + data files, the
    tensors dealt over the shards in turn by name. Returns write_table's stats
    and {name: (data file, offset, size)}."""
    names = sorted(tensors, key=lambda n: n.encode())
    shards = [bytearray() for _ in range(num_shards)]
    entries, where = [(b"", header_proto(num_shards))], {}
    for i, name in enumerate(names):
        a = np.asarray(tensors[name])
        if a.dtype not in DT:
            raise ValueError("%s: dtype %s has no TensorFlow type here" % (name, a.dtype))
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        s = i % num_shards
        entries.append((name.encode(), entry_proto(DT[a.dtype], a.shape, s, len(shards[s]), len(raw),
                                                   mask(crc32c(raw)))))
        where[name] = (data_path(prefix, s, num_shards), len(shards[s]), len(raw))
        shards[s] += raw
    for s, blob in enumerate(shards):
        with open(data_path(prefix, s, num_shards), "wb") as f:
            f.write(blob)
    return write_table(prefix + ".index", entries, block_size), where


def hf_to_tf(state):
    """A HuggingFace-named BERT state_dict ({name: numpy or torch}) as Google's
    TensorFlow names and layout ({name: float32 numpy}): Linear weights
    transposed to [in, out] kernels, LayerNorm weight/bias as gamma/beta,
    embeddings without ".weight". The tied decoder and position_ids are left
    out (Google's checkpoints have neither)."""
    out = {}
    for name, t in state.items():
        a = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
        if name in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias") or \
                name.endswith("position_ids"):
            continue
        if name == "cls.predictions.bias":
            out["cls/predictions/output_bias"] = a
            continue
        if name.startswith("cls.seq_relationship."):
            out["cls/seq_relationship/" + {"weight": "output_weights", "bias": "output_bias"}[
                name.rsplit(".", 1)[1]]] = a  # [2, H]: Google stores it untransposed
            continue
        parts = name.split(".")
        if parts[0] not in ("bert", "cls"):
            raise ValueError("%s: not a BERT tensor name" % name)
        if "layer" in parts:
            i = parts.index("layer")
            parts[i:i + 2] = ["layer_" + parts[i + 1]]
        module, kind = parts[:-1], parts[-1]
        if module[-1] == "LayerNorm":
            tf = module + [{"weight": "gamma", "bias": "beta"}[kind]]
        elif module[-1].endswith("_embeddings"):
            tf = module
        elif kind == "weight":
            tf, a = module + ["kernel"], a.T
        else:
            tf = module + ["bias"]
        out["/".join(tf)] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def write_google_bert(directory, state, config, vocab_tokens, num_shards=2, adam_rng=None, global_step=None,
                      block_size=4096):
    """Google's release layout in directory: bert_model.ckpt.{index,data-*}
    from state (hf_to_tf), bert_config.json (Google's keys, from config, a
    bert_reference.Config) and vocab.txt. With adam_rng (a numpy Generator),
    every variable gets the Adam slots NAME/adam_m and NAME/adam_v (random
    values, as a checkpoint saved during training has); with global_step, the
    int64 scalar global_step. Returns (prefix, {TF name: array written},
    write_table's stats, {TF name: (data file, offset, size)})."""
    tensors = hf_to_tf(state)
    if adam_rng is not None:
        for name, a in list(tensors.items()):
            tensors[name + "/adam_m"] = adam_rng.standard_normal(a.shape).astype(np.float32) * 1e-3
            tensors[name + "/adam_v"] = np.abs(adam_rng.standard_normal(a.shape)).astype(np.float32) * 1e-6
    if global_step is not None:
        tensors["global_step"] = np.array(global_step, dtype=np.int64)
    prefix = os.path.join(directory, "bert_model.ckpt")
    stats, where = write_bundle(prefix, tensors, num_shards, block_size)
    google = {k: getattr(config, k) for k in (
        "attention_probs_dropout_prob", "hidden_dropout_prob", "hidden_size", "intermediate_size",
        "max_position_embeddings", "num_attention_heads", "num_hidden_layers", "type_vocab_size",
        "vocab_size")}
    google.update(hidden_act="gelu", initializer_range=0.02)
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump(google, f, indent=2, sort_keys=True)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab_tokens) + "\n")
    return prefix, tensors, stats, where
