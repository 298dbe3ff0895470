#!/usr/bin/python3
"""The shards are standard LevelDB: read them with plyvel (Python bindings
of the LevelDB library), decode the records from the format documented in
docs/corpus.md alone, and find exactly the token ids `ddpt tokenize` gives
for the input, in order, packed between [CLS] and [SEP]. ddpt still
verifies the corpus after plyvel has opened (and written into) every shard.

usage: plyvel_records.py DDPT_BIN"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import plyvel

SEQ_LEN, SHARDS = 32, 3


def decode(key, value, id_bytes):
    version, flags, n, split = struct.unpack_from("<BBHH", value, 0)
    assert version == 1, f"record version {version}"
    assert (flags & 0x04 != 0) == (id_bytes == 4), "id width flag"
    assert len(value) == 6 + n * id_bytes, f"key {key}: length {len(value)} for {n} ids"
    fmt = "<%d%s" % (n, "H" if id_bytes == 2 else "I")
    return list(struct.unpack_from(fmt, value, 6)), split, flags


def main(ddpt):
    root = tempfile.mkdtemp(prefix="ddpt-plyvel-")
    try:
        text = os.path.join(root, "science.txt")
        shutil.copy("/usr/share/games/fortunes/science", text)
        vocab = os.path.join(root, "vocab.txt")
        subprocess.run([ddpt, "vocab", "--size", "3000", "--out", vocab, text], check=True,
                       capture_output=True)
        corpus = os.path.join(root, "corpus")
        subprocess.run([ddpt, "shard", "--vocab", vocab, "--out", corpus, "--shards", str(SHARDS),
                        "--seq-len", str(SEQ_LEN), "--format", "lines", "--threads", "2", text],
                       check=True, capture_output=True)
        m = json.load(open(os.path.join(corpus, "manifest.json")))
        cls, sep = m["vocab"]["cls_id"], m["vocab"]["sep_id"]
        shards = []
        for s in m["shards"]:
            db = plyvel.DB(os.path.join(corpus, s["name"]), create_if_missing=False)
            records = []
            for i, (key, value) in enumerate(db):
                assert key == struct.pack(">Q", i), f"{s['name']}: key {key.hex()} at {i}"
                ids, split, flags = decode(key, value, m["id_bytes"])
                assert split == len(ids) and flags & 0x03 == 0, "full-sentence records are single"
                assert ids[0] == cls and ids[-1] == sep and len(ids) <= SEQ_LEN
                assert all(0 <= x < m["vocab"]["size"] for x in ids)
                records.append(ids)
            db.close()
            assert len(records) == s["sequences"], f"{s['name']}: {len(records)} records"
            assert sum(map(len, records)) == s["tokens"]
            shards.append(records)
        # Sequence j is record j // SHARDS of shard j % SHARDS.
        total = sum(map(len, shards))
        stream = []
        for j in range(total):
            stream += [x for x in shards[j % SHARDS][j // SHARDS] if x not in (cls, sep)]
        out = subprocess.run([ddpt, "tokenize", "--vocab", vocab, "--ids", text], check=True,
                             capture_output=True, text=True).stdout
        want = [int(x) for x in out.split()]
        assert stream == want, f"records hold {len(stream)} ids, tokenize gives {len(want)}"
        # plyvel opened every shard in place (LevelDB wrote its LOG and a new
        # MANIFEST there); ddpt reads only the listed tables, which are intact.
        subprocess.run([ddpt, "corpus", "verify", corpus], check=True, capture_output=True)
        print(f"plyvel_records: ok ({total} records, {len(want)} ids match ddpt tokenize)")
    finally:
        shutil.rmtree(root)


main(sys.argv[1])
