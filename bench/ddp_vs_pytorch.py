#!/usr/bin/python3
"""Data-parallel training throughput: `mpirun ddpt train` side by side with
PyTorch DistributedDataParallel (gloo) on the same model, in the same run.

For each model and layout (ranks x threads per rank: 1x1, 2x1, 1x2) at the
same global batch, both train from a synthetic corpus of full 128-token
sequences (no padding, about 15% of tokens predicted) and the median step
time over the measured steps gives tokens/s. ddpt's figures come from
RUN_DIR/metrics.jsonl (log.every=1): the step time is the difference of
consecutive elapsed_s, comm_wait_s is the time rank 0 was blocked in the
gradient reducer's final wait, comm_s the span from the first gradient
bucket started to the last one done, post_backward_wait_s the time from the
end of backward to every gradient summed (what backward did not hide), and
comm_hidden_frac = 1 - post_backward_wait_s / comm_s the share of the
exchange hidden behind backward (docs/distributed.md defines them).

PyTorch is measured as installed and with OPENBLAS_CORETYPE set to the
OpenBLAS kernel ddpt ran with (Debian's torch computes its GEMMs with the
same system OpenBLAS; bench/train_vs_pytorch.py does the same). The PyTorch
model is tests/parity/bert_reference.py's BertForMaskedLM: HuggingFace's
structure, whose MLM decoder runs at every position; ddpt runs its decoder
only at the predicted positions. Each torch rank is its own process
(backend gloo, env:// on 127.0.0.1), AdamW, dropout on.

It also times MPI_Allreduce (Open MPI, called through ctypes, 2 ranks, this
machine's shared memory) and gloo's allreduce at a few sizes, and, with
--scaling, times bert-base (`ddpt bench train`) and predicts its step time
at 8, 64 and 512 ranks on a 25 Gbit/s network (docs/scaling.md explains).

usage: bench/ddp_vs_pytorch.py [--ddpt build/ddpt] [--presets bert-tiny,bert-small]
                               [--layouts 1x1,2x1,1x2] [--seq-len 128] [--steps 6] [--warmup 2]
                               [--vocab 30000] [--no-torch] [--no-fair] [--no-allreduce]
                               [--scaling] [--compute-speedups 1,10] [--keep DIR]
Needs Debian's /usr/bin/python3 (torch, numpy) and Open MPI's mpirun. Prints
one JSON line per measurement to stderr and the tables to stdout, between the
load averages at start and end: a shared machine gives noisy figures.
"""
import argparse
import ctypes
import json
import math
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GLOBAL_BATCH = {"bert-tiny": 32, "bert-mini": 32, "bert-small": 16, "bert-medium": 16, "bert-base": 8}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
ALLREDUCE_BYTES = [4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20]
NET_GBIT = 25.0           # the network of the prediction
NET_HOP_LATENCY_S = 30e-6  # assumed per-message latency of TCP over that network


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def thread_env(threads, coretype=None):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(threads)
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    return env


def emit(d):
    print(json.dumps(d), file=sys.stderr, flush=True)
    return d


# ------------------------------------------------------------------ corpus

def make_corpus(ddpt, work, vocab, seq_len, sequences):
    """Lines of exactly seq_len - 2 one-token words: every sequence is full."""
    words = ["w%05d" % i for i in range(vocab)]
    with open(os.path.join(work, "vocab.txt"), "w") as f:
        f.write("\n".join(SPECIALS + words) + "\n")
    rng = random.Random(7)
    with open(os.path.join(work, "text.txt"), "w") as f:
        for _ in range(sequences):
            f.write(" ".join(rng.choice(words) for _ in range(seq_len - 2)) + "\n")
    corpus = os.path.join(work, "corpus")
    subprocess.run([ddpt, "shard", "--vocab", os.path.join(work, "vocab.txt"), "--out", corpus,
                    "--shards", "4", "--seq-len", str(seq_len), "--format", "lines", "--seed", "1",
                    os.path.join(work, "text.txt")], check=True, stdout=subprocess.DEVNULL)
    return corpus


# -------------------------------------------------------------------- ddpt

def mpi_bind(threads):
    return ["--bind-to", "core"] if threads == 1 else ["--bind-to", "none"]


def run_ddpt(a, work, corpus, preset, ranks, threads):
    gb = GLOBAL_BATCH[preset]
    run_dir = os.path.join(work, f"ddpt-{preset}-{ranks}x{threads}")
    cfg = os.path.join(work, f"{preset}.ini")
    with open(cfg, "w") as f:
        f.write(f"[model]\npreset = {preset}\n")
    cmd = MPIRUN + ["-np", str(ranks)] + mpi_bind(threads) + [
        a.ddpt, "train", cfg, "--run-dir", run_dir, "--threads", str(threads),
        "--set", f"data.corpus={corpus}", "--set", f"train.steps={a.warmup + a.steps}",
        "--set", f"train.batch_size={gb // ranks}", "--set", "log.every=1", "--set", "log.eval_every=0",
        "--set", "checkpoint.every=0", "--set", "train.hash_every=0"]
    start = load()
    out = subprocess.run(cmd, env=thread_env(threads), check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    rows = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl"))]
    by_step = {r["step"]: r for r in rows}
    steps, toks, waits, spans, posts, hidden = [], [], [], [], [], []
    for s in range(a.warmup + 1, a.warmup + a.steps + 1):
        r, p = by_step[s], by_step[s - 1]
        steps.append(r["elapsed_s"] - p["elapsed_s"])
        toks.append(r["tokens"] - p["tokens"])
        waits.append(r["comm_wait_s"])
        spans.append(r["comm_s"])
        posts.append(r["post_backward_wait_s"])
        if r["comm_hidden_frac"] is not None:
            hidden.append(r["comm_hidden_frac"])
    med = statistics.median(steps)
    done = [l for l in out.splitlines() if l.startswith("done:")]
    return emit({"impl": "ddpt", "preset": preset, "ranks": ranks, "threads": threads, "global_batch": gb,
                 "seq_len": a.seq_len, "steps": a.steps, "step_time_median_s": med,
                 "step_time_min_s": min(steps), "tokens_per_step": statistics.median(toks),
                 "tokens_per_s": statistics.median(toks) / med,
                 "comm_wait_share": sum(waits) / sum(steps), "comm_wait_median_s": statistics.median(waits),
                 "comm_span_median_s": statistics.median(spans),
                 "post_backward_wait_median_s": statistics.median(posts),
                 "comm_hidden_frac_median": statistics.median(hidden) if hidden else None, "load_at_start": start,
                 "done": done[-1] if done else ""})


# ------------------------------------------------------------ PyTorch DDP

def torch_ddp_bert(preset, threads, vocab):
    """This rank (RANK, WORLD_SIZE, MASTER_* from the environment) in a gloo
    process group, and tests/parity's BertForMaskedLM of the preset in
    DistributedDataParallel, seeded alike on every rank: (ddp, config, rank,
    world). Single-thread ranks are pinned to a core, as mpirun --bind-to
    core pins ddpt's."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
    import bert_reference as ref
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if threads == 1:
        os.sched_setaffinity(0, {rank % os.cpu_count()})
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method="env://")
    torch.manual_seed(1)
    c = ref.preset(preset, vocab_size=vocab + len(SPECIALS))
    model = ref.BertForMaskedLM(c)
    ref.init_weights(model)
    model.train()
    return DDP(model), c, rank, world


def torch_rank(preset, global_batch, seq_len, threads, steps, warmup, vocab):
    import torch
    import torch.distributed as dist
    ddp, c, rank, world = torch_ddp_bert(preset, threads, vocab)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4, weight_decay=0.01)
    batch = global_batch // world
    g = torch.Generator().manual_seed(1 + rank)
    ids = torch.randint(len(SPECIALS), c.vocab_size, (batch, seq_len), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    seg = torch.zeros(batch, seq_len, dtype=torch.long)
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    labels = torch.full((batch, seq_len), -100, dtype=torch.long)
    per_seq = math.ceil(seq_len * 0.15)  # ddpt's max_predictions default
    for b in range(batch):
        pos = 1 + torch.randperm(seq_len - 2, generator=g)[:per_seq]
        labels[b, pos] = ids[b, pos]
        ids[b, pos] = 4
    times = []
    for step in range(warmup + steps):
        dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = ddp(ids, seg, mask, labels)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    times = times[warmup:]
    # gloo's allreduce at the sizes the MPI measurement uses
    gloo = {}
    for nbytes in ALLREDUCE_BYTES:
        t = torch.ones(nbytes // 4)
        reps = 10 if nbytes <= (1 << 20) else 4
        dist.all_reduce(t)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            dist.all_reduce(t)
        gloo[str(nbytes)] = (time.perf_counter() - t0) / reps
    dist.destroy_process_group()
    if rank == 0:
        med = statistics.median(times)
        print(json.dumps({"impl": "pytorch-ddp", "torch": torch.__version__, "preset": preset, "ranks": world,
                          "threads": threads, "global_batch": global_batch, "seq_len": seq_len, "steps": steps,
                          "step_time_median_s": med, "step_time_min_s": min(times),
                          "tokens_per_s": global_batch * seq_len / med, "gloo_allreduce_s": gloo,
                          "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "")}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torch(a, preset, ranks, threads, coretype=None):
    env = thread_env(threads, coretype)
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(ranks))
    start = load()
    procs = []
    for r in range(ranks):
        cmd = [sys.executable, os.path.abspath(__file__), "--steps", str(a.steps), "--warmup", str(a.warmup),
               "--vocab", str(a.vocab), "--torch-rank", preset, str(GLOBAL_BATCH[preset]), str(a.seq_len),
               str(threads)]
        procs.append(subprocess.Popen(cmd, env=dict(env, RANK=str(r)), stdout=subprocess.PIPE, text=True))
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"PyTorch DDP {preset} {ranks}x{threads} failed")
    d = json.loads([l for l in outs[0].splitlines() if l.startswith("{")][-1])
    d["load_at_start"] = start
    return emit(d)


# ------------------------------------------------------- MPI_Allreduce

def allreduce_rank():
    """Under mpirun: in-place MPI_Allreduce (float, sum) of each size, timed
    on rank 0 as the mean over repetitions after one warm-up call."""
    import numpy as np
    mpi = ctypes.CDLL("libmpi.so.40", mode=ctypes.RTLD_GLOBAL)  # Open MPI's plugins need its symbols
    handle = lambda name: ctypes.c_void_p(ctypes.addressof(ctypes.c_char.in_dll(mpi, name)))
    world, flt, op_sum = handle("ompi_mpi_comm_world"), handle("ompi_mpi_float"), handle("ompi_mpi_op_sum")
    in_place = ctypes.c_void_p(1)  # Open MPI's MPI_IN_PLACE
    if mpi.MPI_Init(None, None):
        sys.exit("MPI_Init failed")
    rank, size = ctypes.c_int(), ctypes.c_int()
    mpi.MPI_Comm_rank(world, ctypes.byref(rank))
    mpi.MPI_Comm_size(world, ctypes.byref(size))
    res = {}
    for nbytes in ALLREDUCE_BYTES:
        buf = np.ones(nbytes // 4, dtype=np.float32)
        ptr = ctypes.c_void_p(buf.ctypes.data)
        reps = 50 if nbytes <= (1 << 20) else 10
        mpi.MPI_Allreduce(in_place, ptr, ctypes.c_int(buf.size), flt, op_sum, world)
        mpi.MPI_Barrier(world)
        t0 = time.perf_counter()
        for _ in range(reps):
            if mpi.MPI_Allreduce(in_place, ptr, ctypes.c_int(buf.size), flt, op_sum, world):
                sys.exit("MPI_Allreduce failed")
        res[str(nbytes)] = (time.perf_counter() - t0) / reps
    mpi.MPI_Finalize()
    if rank.value == 0:
        print(json.dumps({"impl": "mpi-allreduce", "ranks": size.value, "seconds": res}))


def fit_alpha_beta(seconds, ranks):
    """t = alpha + 2(N-1)/N * bytes / bw: alpha is the smallest message's
    time (a least-squares intercept over these sizes can come out negative),
    bw the least-squares slope over the messages of 1 MiB and more."""
    big = {int(b): t for b, t in seconds.items() if int(b) >= (1 << 20)}
    xs = [2 * (ranks - 1) / ranks * b for b in big]
    ys = list(big.values())
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return min(seconds.values()), 1 / slope


def run_allreduce(a):
    start = load()
    cmd = MPIRUN + ["-np", "2", "--bind-to", "core", sys.executable, os.path.abspath(__file__), "--allreduce-rank"]
    out = subprocess.run(cmd, env=thread_env(1), check=True, stdout=subprocess.PIPE, text=True).stdout
    d = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    d["alpha_s"], d["bandwidth_bytes_per_s"] = fit_alpha_beta(d["seconds"], d["ranks"])
    d["load_at_start"] = start
    return emit(d)


# ------------------------------------------------------------ prediction

def ring_seconds(nbytes, ranks, hop_latency, bw):
    """One ring allreduce: 2(N-1) messages, each of bytes/N."""
    if ranks == 1:
        return 0.0
    return 2 * (ranks - 1) * hop_latency + 2 * (ranks - 1) / ranks * nbytes / bw


def binomial_seconds(nbytes, ranks, hop_latency, bw):
    """One allreduce as a binomial tree, reduce to a root then broadcast:
    2 ceil(log2 N) rounds, each a whole message. What Open MPI 4.1's
    MPI_Iallreduce (libnbc) runs for in-place buffers or fewer than 4 ranks,
    so what ddpt's reducer gets by default (bench/allreduce_netns.py)."""
    if ranks == 1:
        return 0.0
    return 2 * math.ceil(math.log2(ranks)) * (hop_latency + nbytes / bw)


def predict(compute_s, params, embedding_params, bucket_bytes, ranks, hop_latency, bw,
            bucket_seconds=ring_seconds):
    """Step time of bert-base at `ranks` ranks: compute, plus the gradient
    buckets' allreduces (bucket_seconds: ring_seconds or binomial_seconds),
    of which those finished during backward (all but the embeddings, which
    are the arena's start and final only when backward ends) can hide
    behind the rest of backward (2/3 of compute)."""
    total = 4 * params
    late = 4 * embedding_params
    nb = math.ceil(total / bucket_bytes)
    late_buckets = math.ceil(late / bucket_bytes)
    per_bucket = bucket_seconds(bucket_bytes, ranks, hop_latency, bw)
    comm = nb * per_bucket
    late_comm = late_buckets * per_bucket
    backward = compute_s * 2 / 3
    exposed = late_comm + max(0.0, comm - late_comm - backward)
    return {"ranks": ranks, "buckets": nb, "bucket_s": per_bucket, "comm_s": comm,
            "step_no_overlap_s": compute_s + comm, "step_overlap_s": compute_s + exposed,
            "efficiency_overlap": compute_s / (compute_s + exposed)}


def run_scaling(a):
    start = load()
    out = subprocess.run([a.ddpt, "bench", "train", "--preset", "bert-base", "--batch", "8", "--seq-len", "128",
                          "--threads", "2", "--steps", "2", "--warmup", "1"],
                         env=thread_env(2), check=True, stdout=subprocess.PIPE, text=True).stdout
    d = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    d["load_at_start"] = start
    emit(d)
    # word + position + token-type embeddings and their LayerNorm: the arena's start
    v, h = a.vocab_base, 768
    emb = v * h + 512 * h + 2 * h + 2 * h
    bw = NET_GBIT * 1e9 / 8
    rows = []
    for speed in a.compute_speedups:
        for bucket_mb in (4, 25, 100):
            for n in (8, 64, 512):
                p = predict(d["step_time_median_s"] / speed, d["params"], emb, bucket_mb << 20, n,
                            NET_HOP_LATENCY_S, bw)
                p["bucket_mb"], p["compute_speedup"] = bucket_mb, speed
                p["tokens_per_s_overlap"] = n * 8 * 128 / p["step_overlap_s"]
                rows.append(emit(dict(p, impl="prediction")))
    return d, rows


# ------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpt", default=os.path.join(HERE, "..", "build", "ddpt"))
    ap.add_argument("--presets", default="bert-tiny,bert-small")
    ap.add_argument("--layouts", default="1x1,2x1,1x2")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=30000, help="words in the synthetic vocab (plus 5 specials)")
    ap.add_argument("--vocab-base", type=int, default=30522, help="bert-base's vocab for --scaling")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-fair", action="store_true", help="skip PyTorch with OPENBLAS_CORETYPE set")
    ap.add_argument("--no-allreduce", action="store_true")
    ap.add_argument("--scaling", action="store_true", help="time bert-base and predict 8/64/512 ranks")
    ap.add_argument("--compute-speedups", default="1,10", type=lambda v: [float(x) for x in v.split(",")],
                    help="--scaling: also predict for ranks this many times faster than the measured one")
    ap.add_argument("--keep", help="work in DIR and keep it (default: a temporary directory)")
    ap.add_argument("--torch-rank", nargs=4, metavar=("PRESET", "GLOBAL_BATCH", "SEQ_LEN", "THREADS"))
    ap.add_argument("--allreduce-rank", action="store_true")
    a = ap.parse_args()
    if a.torch_rank:
        p, b, l, t = a.torch_rank
        torch_rank(p, int(b), int(l), int(t), a.steps, a.warmup, a.vocab)
        return
    if a.allreduce_rank:
        allreduce_rank()
        return

    if a.warmup < 1:
        ap.error("--warmup: at least 1 (a step's time is the difference of two logged elapsed_s)")
    a.ddpt = os.path.abspath(a.ddpt)
    ver = subprocess.run([a.ddpt, "version"], check=True, stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"kernel (\w+)", ver)
    kernel = m.group(1) if m else ""
    layouts = [tuple(int(x) for x in l.split("x")) for l in a.layouts.split(",")]
    work = a.keep or tempfile.mkdtemp(prefix="ddp-bench-")
    os.makedirs(work, exist_ok=True)
    print(f"load average at start: {load()}  (cpus: {os.cpu_count()}; OpenBLAS kernel of ddpt: {kernel})")
    try:
        presets = [p for p in a.presets.split(",") if p]
        if presets:
            need = max(GLOBAL_BATCH[p] for p in presets) * (a.steps + a.warmup) * 2
            corpus = make_corpus(a.ddpt, work, a.vocab, a.seq_len, need)
        rows = []
        for preset in presets:
            for ranks, threads in layouts:
                row = {"preset": preset, "ranks": ranks, "threads": threads,
                       "ddpt": run_ddpt(a, work, corpus, preset, ranks, threads)}
                if not a.no_torch:
                    row["torch"] = run_torch(a, preset, ranks, threads)
                    if not a.no_fair and kernel:
                        row["torch_fair"] = run_torch(a, preset, ranks, threads, kernel)
                rows.append(row)
        ar = None if a.no_allreduce else run_allreduce(a)
        scaling = run_scaling(a) if a.scaling else None
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    hdr = (f"{'model':<10} {'layout':>6} {'B':>3} | {'ddpt s/step':>11} {'tok/s':>7} {'wait%':>5} {'span s':>6} "
           f"{'post s':>6} {'hidden':>6} | "
           f"{'torch s/step':>12} {'tok/s':>7} | {'fair s/step':>11} {'tok/s':>7} | {'speedup':>7} | load at start")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        d, t, f = r["ddpt"], r.get("torch"), r.get("torch_fair")
        cell = lambda x, w: (f"{x['step_time_median_s']:>{w}.3f} {x['tokens_per_s']:>7.0f}" if x
                             else f"{'-':>{w}} {'-':>7}")
        base = f or t
        sp = f"{d['tokens_per_s'] / base['tokens_per_s']:>6.2f}x" if base else f"{'-':>7}"
        loads = " / ".join(x["load_at_start"].split()[0] for x in (d, t, f) if x)
        hf = d["comm_hidden_frac_median"]
        hid = f"{100 * hf:>5.0f}%" if hf is not None else f"{'-':>6}"
        print(f"{r['preset']:<10} {r['ranks']}x{r['threads']:<4} {d['global_batch']:>3} | "
              f"{cell(d, 11)} {100 * d['comm_wait_share']:>5.1f} {d['comm_span_median_s']:>6.3f} "
              f"{d['post_backward_wait_median_s']:>6.3f} {hid} | "
              f"{cell(t, 12)} | {cell(f, 11)} | {sp} | {loads}")
    print(f"layout: ranks x threads per rank, same global batch B of {a.seq_len}-token sequences; "
          f"median over {a.steps} steps after {a.warmup} warm-up. wait%: share of ddpt's step time rank 0 "
          f"spent blocked on gradient buckets; span: first bucket started to last done; post: end of backward "
          f"to every gradient summed; hidden: 1 - post / span (median; - on one rank). speedup: ddpt over "
          f"PyTorch DDP (gloo) with OPENBLAS_CORETYPE={kernel} (as installed where not run). PyTorch's MLM "
          f"decoder runs at all positions (as HuggingFace's); ddpt's only at the predicted ones.")
    by = {(r["preset"], r["ranks"], r["threads"]): r for r in rows}
    if ("bert-small", 2, 1) in by:
        d21 = by[("bert-small", 2, 1)]
        if ("bert-small", 1, 2) in by:
            ratio = d21["ddpt"]["tokens_per_s"] / by[("bert-small", 1, 2)]["ddpt"]["tokens_per_s"]
            print(f"target 1: bert-small 2x1 / 1x2 tokens/s = {ratio:.2f} (want >= 0.90): "
                  f"{'met' if ratio >= 0.9 else 'NOT met'}")
        for key in ("torch", "torch_fair"):
            if key in d21:
                ratio = d21["ddpt"]["tokens_per_s"] / d21[key]["tokens_per_s"]
                print(f"target 2: bert-small 2x1 ddpt / PyTorch DDP {'(fair)' if key == 'torch_fair' else '(installed)'}"
                      f" tokens/s = {ratio:.2f} (want >= 1.5): {'met' if ratio >= 1.5 else 'NOT met'}")
    if ar:
        gloo = next((r["torch"]["gloo_allreduce_s"] for r in rows if r.get("torch") and r["ranks"] == 2), None)
        print("allreduce, 2 ranks on this machine (sum of float32, in place): size | Open MPI ms | GB/s"
              + (" | gloo ms" if gloo else ""))
        for b, s in ar["seconds"].items():
            g = f" | {1e3 * gloo[b]:.3f}" if gloo else ""
            print(f"  {int(b) >> 10:>6} KiB | {1e3 * s:8.3f} | {int(b) / s / 1e9:5.2f}{g}")
        print(f"  Open MPI t = alpha + 2(N-1)/N bytes / bw: alpha (4 KiB) {1e6 * ar['alpha_s']:.1f} us, "
              f"bw {ar['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s")
    if scaling:
        d, preds = scaling
        print(f"bert-base, {d['params']} parameters ({4 * d['params'] / 1e6:.0f} MB of gradients), batch 8 x 128, "
              f"2 threads: {d['step_time_median_s']:.2f} s/step compute ({d['blas_kernel']})")
        print(f"predicted on {NET_GBIT:g} Gbit/s, {1e6 * NET_HOP_LATENCY_S:.0f} us per message, ring allreduce per bucket:")
        print(f"  {'compute':>7} {'bucket':>6} {'ranks':>5} {'buckets':>7} {'ms/bucket':>9} {'comm s':>7} "
              f"{'step s (no overlap)':>19} {'step s (overlap)':>16} {'efficiency':>10} {'tokens/s':>9}")
        for p in preds:
            print(f"  {d['step_time_median_s'] / p['compute_speedup']:>6.2f}s {p['bucket_mb']:>4}MB {p['ranks']:>5} "
                  f"{p['buckets']:>7} {1e3 * p['bucket_s']:>9.2f} "
                  f"{p['comm_s']:>7.3f} {p['step_no_overlap_s']:>19.3f} {p['step_overlap_s']:>16.3f} "
                  f"{100 * p['efficiency_overlap']:>9.0f}% {p['tokens_per_s_overlap']:>9.0f}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
