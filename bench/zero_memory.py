#!/usr/bin/python3
"""ZeRO-1's memory per rank, measured: `mpirun ddpt train` with
[train] zero = 0 and 1 side by side with PyTorch DDP with torch.optim.AdamW
and with torch.distributed.optim.ZeroRedundancyOptimizer(AdamW), the same
model, ranks and batch, in the same run.

For each preset and rank count, ddpt trains a few steps from a synthetic
corpus (bench/ddp_vs_pytorch.py's: full 128-token sequences) and writes a
checkpoint at the end, then resumes from it for one more step. Each rank's
peak resident set (/usr/bin/time's maximum RSS, the kernel's VmHWM) is
compared with `ddpt model info --world N --zero Z`: rank 0's with the peak
"at a checkpoint", the others' with the total, and the resumed run's with
the peak "at a resume". The line that matters: what zero = 1 saves on each
rank against what model info predicts, (N-1)/N of the Adam state. PyTorch's
ranks report their peak RSS after the same steps (getrusage); its saving by
ZeroRedundancyOptimizer is printed beside ddpt's. PyTorch's absolute RSS
includes its runtime (about 0.3 GB), so compare the savings, not the totals.

usage: bench/zero_memory.py [--ddpt build/ddpt] [--presets bert-small]
                            [--ranks 2] [--steps 2] [--no-torch] [--keep DIR]
Needs Debian's /usr/bin/python3 (torch), Open MPI's mpirun and /usr/bin/time.
About a minute for bert-small on 2 ranks; bert-base on 2 ranks needs about
7 GB and a few minutes.
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ddp_vs_pytorch import (GLOBAL_BATCH, MPIRUN, SPECIALS, emit, free_port, load,  # noqa: E402
                            make_corpus, thread_env, torch_ddp_bert)

MIB = 1024 * 1024


def model_info(a, preset, vocab, batch, ranks, zero):
    """model info's figures (MiB): total, peak at a checkpoint, at a resume."""
    out = subprocess.run([a.ddpt, "model", "info", "--preset", preset, "--set", f"vocab_size={vocab}",
                          "--batch", str(batch), "--seq-len", str(a.seq_len), "--world", str(ranks),
                          "--zero", str(zero)], check=True, stdout=subprocess.PIPE, text=True).stdout

    def figure(label):
        m = re.search(r"^\s*%s\s+([0-9.]+)" % label, out, re.M)
        if not m:
            sys.exit(f"zero_memory: no '{label}' line in ddpt model info's output:\n{out}")
        return float(m.group(1))
    return {"total": figure("total"), "checkpoint": figure("at a checkpoint"),
            "resume": figure("at a resume"), "adam": figure(r"adam m \+ v")}


def peaks(prefix, ranks):
    """Each rank's peak RSS in MiB, from /usr/bin/time -f %M (KiB)."""
    return [int(open(f"{prefix}.rss.{r}").read().split()[-1]) / 1024 for r in range(ranks)]


def run_ddpt(a, work, corpus, preset, ranks, zero):
    batch = GLOBAL_BATCH[preset] // ranks
    cfg = os.path.join(work, f"{preset}.ini")
    with open(cfg, "w") as f:
        f.write(f"[model]\npreset = {preset}\n")
    run_dir = os.path.join(work, f"ddpt-{preset}-{ranks}-zero{zero}")

    def launch(tag, args):
        prefix = f"{run_dir}.{tag}"
        # /usr/bin/time around each rank: its own peak, not mpirun's.
        bind = "core" if ranks <= (os.cpu_count() or 1) else "none"  # more ranks than cores: unbound
        cmd = MPIRUN + ["-np", str(ranks), "--bind-to", bind, "sh", "-c",
                        '/usr/bin/time -f %M -o "$0.rss.$OMPI_COMM_WORLD_RANK" "$@"', prefix,
                        a.ddpt, "train"] + args + ["--threads", "1", "--set", f"train.zero={zero}"]
        r = subprocess.run(cmd, env=thread_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            sys.exit(f"zero_memory: ddpt {preset} on {ranks} ranks, zero {zero} ({tag}) exited "
                     f"{r.returncode}:\n{r.stdout}")
        return peaks(prefix, ranks)

    trained = launch("train", [cfg, "--run-dir", run_dir, "--set", f"data.corpus={corpus}",
                               "--set", f"train.steps={a.steps}", "--set", f"train.batch_size={batch}",
                               "--set", "log.eval_every=0", "--set", f"checkpoint.every={a.steps}",
                               "--set", "train.hash_every=0"])
    resumed = launch("resume", ["--resume", run_dir, "--set", f"train.steps={a.steps + 1}"])
    vocab = a.vocab + len(SPECIALS)
    pred = model_info(a, preset, vocab, batch, ranks, zero)
    return emit({"impl": "ddpt", "preset": preset, "ranks": ranks, "zero": zero, "batch_per_rank": batch,
                 "seq_len": a.seq_len, "peak_train_mib": trained, "peak_resume_mib": resumed,
                 "predicted_mib": pred, "load": load()})


def torch_rank(preset, ranks_batch, seq_len, steps, vocab, zero):
    import torch
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer
    ddp, c, rank, _ = torch_ddp_bert(preset, 1, vocab)
    if zero:
        opt = ZeroRedundancyOptimizer(ddp.parameters(), optimizer_class=torch.optim.AdamW, lr=1e-4,
                                      weight_decay=0.01)
    else:
        opt = torch.optim.AdamW(ddp.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(1 + rank)
    ids = torch.randint(len(SPECIALS), c.vocab_size, (ranks_batch, seq_len), generator=g)
    seg = torch.zeros(ranks_batch, seq_len, dtype=torch.long)
    mask = torch.ones(ranks_batch, seq_len, dtype=torch.long)
    labels = torch.full((ranks_batch, seq_len), -100, dtype=torch.long)
    labels[:, 1::7] = ids[:, 1::7]
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        ddp(ids, seg, mask, labels).backward()
        opt.step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The Adam moments this rank holds: ZeroRedundancyOptimizer gives each
    # rank whole tensors (its local optimizer is opt.optim), so the shares
    # are uneven where one tensor (the word embeddings) is large.
    local = opt.optim if zero else opt
    adam = sum(t.numel() * t.element_size() for st in local.state.values()
               for k, t in st.items() if k in ("exp_avg", "exp_avg_sq")) / MIB
    got = [None] * dist.get_world_size()
    dist.all_gather_object(got, (peak, adam))
    if rank == 0:
        print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "zero": zero,
                          "peak_mib": [g[0] for g in got], "adam_mib": [g[1] for g in got]}), flush=True)
    # Not destroy_process_group: in torch 1.13 it can leave rank 0 (the
    # TCPStore's server) spinning on a socket its peer closed. Every rank
    # is done once the barrier returns.
    dist.barrier()
    os._exit(0)


def run_torch(a, preset, ranks, zero):
    env = thread_env(1)
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(ranks))
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--torch-rank", preset,
                               str(GLOBAL_BATCH[preset] // ranks), str(a.seq_len), str(a.steps), str(a.vocab),
                               str(zero)], env=dict(env, RANK=str(r)), stdout=subprocess.PIPE, text=True)
             for r in range(ranks)]
    outs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        sys.exit(f"zero_memory: PyTorch {preset} on {ranks} ranks (zero {zero}) failed")
    d = json.loads([line for line in outs[0].splitlines() if line.startswith("{")][-1])
    d.update(preset=preset, ranks=ranks)
    return emit(d)


def report(preset, ranks, ddpt, torch_runs):
    z0, z1 = ddpt
    p0, p1 = z0["predicted_mib"], z1["predicted_mib"]
    print(f"\n{preset}, {ranks} ranks x 1 thread, batch {z0['batch_per_rank']} x {z0['seq_len']} per rank; "
          f"Adam m + v per rank: {p0['adam']:.1f} MiB (zero 0), {p1['adam']:.1f} (zero 1)")
    print(f"{'rank':>4} {'run':>7} | {'zero 0':>8} {'pred':>8} | {'zero 1':>8} {'pred':>8} | "
          f"{'saved':>7} {'pred':>7} {'ratio':>5} | {'torch AdamW':>11} {'torch ZeRO':>10} {'saved':>7} {'m+v':>12}")
    for run, key in (("train", "peak_train_mib"), ("resume", "peak_resume_mib")):
        for r in range(ranks):
            # Rank 0 writes a checkpoint at the end of both runs (the resumed
            # one too), so its peak is model info's "at a checkpoint".
            want = "checkpoint" if r == 0 else ("resume" if run == "resume" else "total")
            m0, m1 = z0[key][r], z1[key][r]
            saved, pred = m0 - m1, p0[want] - p1[want]
            line = (f"{r:>4} {run:>7} | {m0:>8.1f} {p0[want]:>8.1f} | {m1:>8.1f} {p1[want]:>8.1f} | "
                    f"{saved:>7.1f} {pred:>7.1f} {saved / pred if pred else float('nan'):>5.2f} |")
            if torch_runs and run == "train":
                t0, t1 = torch_runs[0]["peak_mib"][r], torch_runs[1]["peak_mib"][r]
                a0, a1 = torch_runs[0]["adam_mib"][r], torch_runs[1]["adam_mib"][r]
                line += f" {t0:>11.1f} {t1:>10.1f} {t0 - t1:>7.1f} {a0:>5.1f}->{a1:<5.1f}"
            print(line)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-rank":
        p, b, L, steps, vocab, zero = sys.argv[2:8]
        torch_rank(p, int(b), int(L), int(steps), int(vocab), int(zero))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ddpt", default="build/ddpt")
    ap.add_argument("--presets", default="bert-small")
    ap.add_argument("--ranks", default="2")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=30000)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--keep")
    a = ap.parse_args()
    a.ddpt = os.path.abspath(a.ddpt)
    if not shutil.which("/usr/bin/time"):
        sys.exit("zero_memory: needs /usr/bin/time (apt-get install time)")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               "?")
    print(f"CPU: {cpu} ({os.cpu_count()} cpus); load average at start: {load()}")
    work = a.keep or tempfile.mkdtemp(prefix="ddpt-zero-mem-")
    os.makedirs(work, exist_ok=True)
    try:
        sequences = max(GLOBAL_BATCH.values()) * (a.steps + 2) * 4
        corpus = make_corpus(a.ddpt, work, a.vocab, a.seq_len, sequences)
        for preset in a.presets.split(","):
            for ranks in (int(r) for r in a.ranks.split(",")):
                ddpt = [run_ddpt(a, work, corpus, preset, ranks, z) for z in (0, 1)]
                torch_runs = None if a.no_torch else [run_torch(a, preset, ranks, z) for z in (0, 1)]
                report(preset, ranks, ddpt, torch_runs)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nMiB; ddpt: each rank's peak RSS (VmHWM) in a run that trains and checkpoints (rank 0 holds the "
          "writer: 'at a checkpoint'), then in one that resumes; pred: `ddpt model info --world N --zero Z`; "
          "saved: zero 0 minus zero 1, against the prediction's difference. torch: peak RSS after the same "
          "steps with AdamW and with ZeroRedundancyOptimizer(AdamW) (includes PyTorch's runtime); m+v: the Adam "
          "moments each rank holds, AdamW -> ZeRO (ZeroRedundancyOptimizer shares whole tensors).")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
