#!/usr/bin/python3
"""Models in and out at bert-base size: `ddpt import` of a HuggingFace
directory and of a Google TF checkpoint, `ddpt export` as f32 and bf16,
each beside the speed of the disk they run on, measured in the same run.

The model (bert-base: vocab 30522, 12 layers, hidden 768, random weights,
about 110M parameters, 440 MB in F32) is written once, by the test suite's
own writers (tests/parity/safetensors_io.py, tf_bundle_writer.py), as an HF
directory and as a TF bundle in two data files. The disk: dd of the same
byte count, written with conv=fsync (ddpt fsyncs what it writes) and read
back; reads are cold when the page cache can be dropped (root:
/proc/sys/vm/drop_caches, then every timed command starts cold too), else
warm, and the report says which.

usage: bench/interchange_bench.py [--build DIR] [--work DIR] [--repeat N] [--keep]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
import bert_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
import tf_bundle_writer as tfw  # noqa: E402

MB = 1e6
SLOW_CRC32C = tfw.crc32c  # the byte-at-a-time original, kept while write_model swaps in fast_crc32c
TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def crc_operator(nbytes):
    """Four 256-entry tables that feed nbytes zero bytes through a CRC-32C
    register: the register r becomes T0[r & 255] ^ T1[r >> 8 & 255] ^ ..."""
    table = np.array(tfw.CRC_TABLE, dtype=np.uint32)
    basis = np.array([1 << i for i in range(32)], dtype=np.uint32)
    for _ in range(nbytes):
        basis = table[basis & 0xFF] ^ (basis >> 8)
    byte = np.arange(256, dtype=np.uint32)
    ops = []
    for k in range(4):
        acc = np.zeros(256, dtype=np.uint32)
        for bit in range(8):
            acc ^= np.where(byte >> bit & 1, basis[8 * k + bit], 0).astype(np.uint32)
        ops.append([int(x) for x in acc])
    return ops


OPERATORS = {}


def fast_crc32c(data, crc=0):
    """tf_bundle_writer.crc32c, vectorized: a pure-Python CRC of 440 MB takes
    minutes. The data is cut into n chunks of L bytes whose CRC registers
    (from 0) numpy computes side by side; the CRC is linear, so the running
    register is then r = shift_L(r) ^ chunk_register, chunk after chunk."""
    buf = np.frombuffer(bytes(data), dtype=np.uint8)
    length = 1 << max(10, int(np.log2(max(len(buf), 1) / 4) / 2))
    n = len(buf) // length
    if n < 4:
        return SLOW_CRC32C(data, crc)
    if length not in OPERATORS:
        OPERATORS[length] = crc_operator(length)
    t0, t1, t2, t3 = OPERATORS[length]
    table = np.array(tfw.CRC_TABLE, dtype=np.uint32)
    columns = np.ascontiguousarray(buf[:n * length].reshape(n, length).T)
    regs = np.zeros(n, dtype=np.uint32)
    for col in columns:
        regs = table[(regs ^ col) & 0xFF] ^ (regs >> 8)
    r = crc ^ 0xFFFFFFFF
    for chunk in regs.tolist():
        r = t0[r & 255] ^ t1[r >> 8 & 255] ^ t2[r >> 16 & 255] ^ t3[r >> 24] ^ chunk
    return SLOW_CRC32C(buf[n * length:].tobytes(), r ^ 0xFFFFFFFF)


def bert_base_weights(seed):
    """HF-named float32 weights of a BertForPreTraining at bert-base size
    (the tied decoder left out, as HuggingFace stores it)."""
    cfg = ref.preset("bert-base")
    shapes = {k: tuple(v.shape) for k, v in ref.BertForPreTraining(cfg).state_dict().items() if k not in TIED}
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in shapes.items():
        if name.endswith("LayerNorm.weight"):
            weights[name] = np.ones(shape, dtype=np.float32)
        else:
            weights[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
    return cfg, weights


def write_model(work, cfg, weights):
    """The HF directory and the TF prefix, with a vocab of cfg.vocab_size tokens."""
    vocab = ["[PAD]"] + ["[unused%d]" % i for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += ["w%d" % i for i in range(cfg.vocab_size - len(vocab))]
    hf = os.path.join(work, "hf")
    os.makedirs(hf)
    st.write(os.path.join(hf, "model.safetensors"), weights, "F32")
    with open(os.path.join(hf, "config.json"), "w") as f:
        json.dump(dict(cfg.to_json(), architectures=["BertForPreTraining"], model_type="bert"), f)
    with open(os.path.join(hf, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    tf_dir = os.path.join(work, "tf")
    os.makedirs(tf_dir)
    for a, b in ((b"\0" * 100000, 0), (os.urandom(300000), 0), (os.urandom(70001), 12345)):
        if fast_crc32c(a, b) != SLOW_CRC32C(a, b):
            sys.exit("interchange_bench: the vectorized CRC-32C disagrees with tf_bundle_writer's")
    tfw.crc32c = fast_crc32c
    try:
        prefix, _, _, _ = tfw.write_google_bert(tf_dir, weights, cfg, vocab, num_shards=2)
    finally:
        tfw.crc32c = SLOW_CRC32C
    return hf, prefix


def size_of(path):
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def drop_caches():
    """True if the page cache was dropped (needs root and a writable /proc/sys)."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed(argv, cold, cleanup):
    """(wall seconds, CPU seconds user + system, peak RSS in MB) of argv,
    cold if asked (the cache dropped first); cleanup() runs first to remove
    its output."""
    cleanup()
    if cold:
        drop_caches()
    # The peak RSS comes from /usr/bin/time in the child: wait4's ru_maxrss
    # would also count this Python process, whose pages a forked child
    # starts with (about 1 GB here, holding the model's arrays).
    with tempfile.TemporaryFile() as log, tempfile.NamedTemporaryFile("r") as peak:
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", peak.name] + argv, stdout=log,
                             stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            log.seek(0)
            sys.exit("interchange_bench: %s exited %d:\n%s" % (" ".join(argv), p.returncode,
                                                               log.read()[-3000:].decode(errors="replace")))
        rss_kb = float(peak.read().split()[-1])
    return seconds, usage.ru_utime + usage.ru_stime, rss_kb / 1024


def disk_speed(work, nbytes, repeat, cold):
    """(write MB/s with fsync, read MB/s): best of repeat dd runs of nbytes."""
    path = os.path.join(work, "dd.bin")
    count = max(1, round(nbytes / (1 << 20)))
    write = min(timed(["dd", "if=/dev/zero", "of=" + path, "bs=1M", "count=%d" % count, "conv=fsync"], False,
                      lambda: os.path.exists(path) and os.unlink(path))[0] for _ in range(repeat))
    read = min(timed(["dd", "if=" + path, "of=/dev/null", "bs=1M"], cold, lambda: None)[0] for _ in range(repeat))
    os.unlink(path)
    return count * (1 << 20) / write / MB, count * (1 << 20) / read / MB


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"), help="the build directory (ddpt)")
    ap.add_argument("--work", help="where to write the model and outputs (default: $TMPDIR or /tmp)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command; the best and median are shown")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    ddpt = os.path.join(a.build, "ddpt")
    work = tempfile.mkdtemp(prefix="ddpt-interchange-bench-", dir=a.work)
    try:
        t0 = time.perf_counter()
        cfg, weights = bert_base_weights(1)
        hf, prefix = write_model(work, cfg, weights)
        params = sum(w.size for w in weights.values())
        st_bytes = size_of(os.path.join(hf, "model.safetensors"))
        tf_bytes = sum(size_of(os.path.join(os.path.dirname(prefix), f)) for f in os.listdir(os.path.dirname(prefix))
                       if f.startswith("bert_model.ckpt"))
        del weights
        cold = drop_caches()
        print("machine: %s, %d CPUs, load average %s; work dir %s" % (
            cpu_model(), os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3]), work))
        print("model: bert-base with the NSP head, %.1fM parameters; model.safetensors %.1f MB, TF bundle %.1f MB "
              "(2 data files + index), written in %.0f s" % (params / 1e6, st_bytes / MB, tf_bytes / MB,
                                                             time.perf_counter() - t0))
        write_mbs, read_mbs = disk_speed(work, st_bytes, a.repeat, cold)
        print("disk (dd, %.0f MB, best of %d): write + fsync %.0f MB/s, read %.0f MB/s (%s)"
              % (st_bytes / MB, a.repeat, write_mbs, read_mbs,
                 "cold: page cache dropped before each read and each ddpt run" if cold else
                 "WARM: the page cache could not be dropped (not root?); reads come from memory"))
        ckpt = os.path.join(work, "import-hf.h5")
        cases = [  # what, argv, output, bytes read, bytes written (measured after the run)
            ("import HF dir", [ddpt, "import", hf, "--out", ckpt], ckpt, st_bytes),
            ("import TF bundle", [ddpt, "import", prefix, "--out", os.path.join(work, "import-tf.h5")],
             os.path.join(work, "import-tf.h5"), tf_bytes),
            ("export f32", [ddpt, "export", ckpt, "--out", os.path.join(work, "export-f32")],
             os.path.join(work, "export-f32"), None),
            ("export bf16", [ddpt, "export", ckpt, "--out", os.path.join(work, "export-bf16"), "--dtype", "bf16"],
             os.path.join(work, "export-bf16"), None),
        ]
        for what, argv, out, read in cases:
            def remove(path=out):
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.unlink(path)
            runs = sorted(timed(argv, cold, remove) for _ in range(a.repeat))
            written = size_of(out)
            read = size_of(ckpt) if read is None else read
            best, cpu, rss = runs[0]
            floor = read / (read_mbs * MB) + written / (write_mbs * MB)
            print("ddpt %-16s best %5.2f s (median %5.2f s; CPU %.2f s, peak RSS %.0f MB): read %3.0f MB at %3.0f MB/s, "
                  "wrote %3.0f MB at %3.0f MB/s; dd takes %.2f s for both: %.1fx" % (
                      what, best, statistics.median(r[0] for r in runs), cpu, rss, read / MB, read / MB / best,
                      written / MB, written / MB / best, floor, best / floor))
        if a.keep:
            print("kept %s" % work)
    finally:
        if not a.keep:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
