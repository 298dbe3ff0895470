#!/usr/bin/python3
"""Tokens/s of a full BERT training step (forward, backward, AdamW): ddpt
(`ddpt bench train`) side by side with the same model in PyTorch, same
threads, same batch shape, dropout on, in the same run.

PyTorch is measured twice: as installed, and with OPENBLAS_CORETYPE set to the
OpenBLAS kernel ddpt ran with (the fair baseline: Debian's torch computes its
GEMMs with the same OpenBLAS). The PyTorch model is tests/parity/
bert_reference.py, HuggingFace's BertForPreTraining structure (its MLM decoder
runs at every position, as HuggingFace's does).

With --bf16 (issue 17) each round also runs `ddpt bench train --precision
bf16` and PyTorch under torch.autocast("cpu", dtype=torch.bfloat16) (same
model, threads, batch; OPENBLAS_CORETYPE set as for the fair run), and a
second table puts bf16 beside fp32: ddpt bf16 over ddpt fp32 (issue 17
asks >= 1.8x at bert-base), ddpt bf16 over PyTorch bf16 (>= 2x), bf16 RSS
over the predicted memory, oneDNN's ISA.

usage: bench/train_vs_pytorch.py [--ddpt build/ddpt] [--presets bert-tiny,bert-small,bert-base]
                                 [--threads 1,2] [--seq-len 128] [--steps 3] [--warmup 1]
                                 [--rounds 2] [--no-torch] [--bf16]
Needs Debian's /usr/bin/python3 with python3-torch. Prints one JSON line per
measurement to stderr and a table to stdout. A shared machine gives noisy
figures: the table starts and ends with the load average, each
configuration runs --rounds rounds alternating ddpt and PyTorch, the table
shows each side's least disturbed round and the per-round medians follow
it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = {"bert-tiny": 32, "bert-mini": 32, "bert-small": 16, "bert-medium": 16, "bert-base": 8}


def torch_worker(preset, batch, seq_len, threads, steps, warmup, bf16=False):
    import contextlib
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "parity"))
    import bert_reference as ref
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    c = ref.preset(preset)
    model = ref.BertForPreTraining(c)
    ref.init_weights(model)
    model.train()
    if bf16:
        # PyTorch 1.13's CPU autocast leaves layer_norm off its fp32 list and
        # then refuses a bf16 input with fp32 weights (the MLM head's
        # LayerNorm after a bf16 GELU). Later versions run it in fp32, as
        # here, and as ddpt does.
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.register_forward_pre_hook(lambda _, inp: (inp[0].float(),))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, c.vocab_size, (batch, seq_len), generator=g)
    seg = (torch.arange(seq_len) >= seq_len // 2).long().expand(batch, seq_len).contiguous()
    mask = torch.ones(batch, seq_len, dtype=torch.long)
    labels = torch.full((batch, seq_len), -100, dtype=torch.long)
    per_seq = (seq_len * 15 + 50) // 100
    for b in range(batch):
        pos = 1 + torch.randperm(seq_len - 1, generator=g)[:per_seq]
        labels[b, pos] = torch.randint(0, c.vocab_size, (per_seq,), generator=g)
    nsp = torch.randint(0, 2, (batch,), generator=g)
    times = []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        # autocast: PyTorch's own bf16 mixed precision (fp32 weights, bf16
        # matmuls), the baseline issue 17 names.
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = model(ids, seg, mask, labels, nsp)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if step >= warmup:
            times.append(dt)
    med = statistics.median(times)
    import resource
    print(json.dumps({"bench": "train", "impl": "pytorch", "torch": torch.__version__,
                      "preset": preset, "batch": batch, "seq_len": seq_len, "threads": threads,
                      "steps": steps, "step_time_median_s": med, "step_time_min_s": min(times),
                      "tokens_per_s": batch * seq_len / med, "precision": "bf16" if bf16 else "fp32",
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "")}))


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    print(line, file=sys.stderr)
    return json.loads(line)


def best_round(rs):
    """The round with the lowest median step time: the least disturbed one.
    Its figures are reported; sgemm GFLOP/s is the best of all rounds (ddpt
    measures it once per round, and interference only lowers it)."""
    best = dict(min(rs, key=lambda r: r["step_time_median_s"]))
    if "sgemm_gflops_per_s" in best:
        peak = max(r["sgemm_gflops_per_s"] for r in rs)
        scale = best["sgemm_gflops_per_s"] / peak
        best["sgemm_gflops_per_s"] = peak
        best["mfu_vs_sgemm"] *= scale
        best["work_mfu_vs_sgemm"] *= scale
    return best


def or_dash(run, text, *widths):
    """text(run), or a dash per column of the given widths when the run is missing."""
    return text(run) if run else " ".join(f"{'-':>{w}}" for w in widths)


def print_header(hdr):
    print(hdr)
    print("-" * len(hdr))


def needed_for_2x(b, torch_bf16):
    """GFLOP/s that 2x PyTorch bf16's tokens/s takes at ddpt's work per
    token, and its fraction of the bf16 peak ddpt measured: above 1, the
    target is out of reach even if the step were all GEMMs at peak."""
    work_per_token = b["work_flops_per_step"] / (b["batch"] * b["seq_len"])
    need = 2 * torch_bf16["tokens_per_s"] * work_per_token / 1e9
    return f"{need:.0f} ({need / b['peak_gflops_per_s']:.2f})"


def print_bf16(rows):
    """The bf16 table: each side's best round, ratios of the same run."""
    hdr = (f"{'model':<11} {'B':>3} {'thr':>3} | {'ddpt fp32':>9} {'ddpt bf16':>9} {'bf16/fp32':>9} | "
           f"{'torch fp32':>10} {'torch bf16':>10} | {'ddpt bf16/torch bf16':>20} {'2x needs GF/s':>13} | "
           f"{'bf16 GF/s':>9} {'work MFU':>8} | {'RSS/pred':>8} {'ops/pred':>8} | oneDNN")
    print()
    print_header(hdr)
    for r in rows:
        d, b = r["ddpt"], r["ddpt_bf16"]
        tf = or_dash(r.get("torch_fair"), lambda f: f"{f['tokens_per_s']:>10.0f}", 10)
        tb = or_dash(r.get("torch_bf16"), lambda t: f"{t['tokens_per_s']:>10.0f}", 10)
        vs = or_dash(r.get("torch_bf16"), lambda t: f"{b['tokens_per_s'] / t['tokens_per_s']:>19.2f}x", 20)
        need = or_dash(r.get("torch_bf16"), lambda t: f"{needed_for_2x(b, t):>13}", 13)
        print(f"{r['preset']:<11} {r['batch']:>3} {r['threads']:>3} | {d['tokens_per_s']:>9.0f} "
              f"{b['tokens_per_s']:>9.0f} {b['tokens_per_s'] / d['tokens_per_s']:>8.2f}x | {tf} {tb} | {vs} {need} | "
              f"{b['peak_gflops_per_s']:>9.1f} {b['work_mfu_vs_peak']:>8.2f} | "
              f"{b['rss_over_predicted']:>8.2f} "
              f"{b['bf16_operand_bytes_used'] / b['bf16_operand_bytes_predicted']:>8.2f} | {b['onednn']}")
    if any(len(r.get("ddpt_bf16_rounds", [])) > 1 for r in rows):
        print("rounds (median s/step of each round, ddpt fp32 | ddpt bf16 | torch bf16):")
        for r in rows:
            print(f"  {r['preset']} {r['threads']} thr: {' '.join(f'{x:.2f}' for x in r['ddpt_rounds'])} | "
                  f"{' '.join(f'{x:.2f}' for x in r['ddpt_bf16_rounds'])} | "
                  f"{' '.join(f'{x:.2f}' for x in r.get('torch_bf16_rounds', []))}")
    print("bf16/fp32: ddpt --precision bf16 tokens/s over ddpt fp32; torch bf16: torch.autocast(\"cpu\", "
          "dtype=torch.bfloat16), OPENBLAS_CORETYPE as ddpt's kernel; bf16 GF/s: oneDNN's bf16 matmul "
          "peak ddpt measured (2048^3); work MFU against it; 2x needs: the GFLOP/s that twice torch bf16's "
          "tokens/s takes at ddpt's work per token (its fraction of the bf16 peak). RSS/pred: peak RSS over `ddpt model info "
          "--precision bf16`'s total; ops/pred: the bf16 conversion buffers used over their estimate "
          "(at most 1).")


def cpu_model():
    """The CPU's model name and whether it has AVX512_BF16, from /proc/cpuinfo."""
    name, flags = "unknown CPU", ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = value
    return f"{name}, {'with' if 'avx512_bf16' in flags.split() else 'without'} avx512_bf16"


def load():
    return open("/proc/loadavg").read().split()[:3]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpt", default=os.path.join(HERE, "..", "build", "ddpt"))
    ap.add_argument("--presets", default="bert-tiny,bert-small,bert-base")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternating ddpt / PyTorch rounds per configuration; the best round of each side is reported")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="also ddpt --precision bf16 and PyTorch bf16 autocast")
    ap.add_argument("--torch-bf16", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--torch-worker", nargs=4, metavar=("PRESET", "BATCH", "SEQ_LEN", "THREADS"))
    a = ap.parse_args()
    if a.torch_worker:
        p, b, l, t = a.torch_worker
        torch_worker(p, int(b), int(l), int(t), a.steps, a.warmup, a.torch_bf16)
        return

    print(f"load average at start: {' '.join(load())}  (cpus: {os.cpu_count()}, {cpu_model()})")
    rows = []
    for preset in a.presets.split(","):
        batch = BATCH[preset]
        for threads in [int(t) for t in a.threads.split(",")]:
            base_env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
            base_env["OMP_NUM_THREADS"] = str(threads)
            ddpt_cmd = [a.ddpt, "bench", "train", "--preset", preset, "--batch", str(batch),
                        "--seq-len", str(a.seq_len), "--threads", str(threads),
                        "--steps", str(a.steps), "--warmup", str(a.warmup)]
            worker = [sys.executable, os.path.abspath(__file__), "--steps", str(a.steps),
                      "--warmup", str(a.warmup), "--torch-worker", preset, str(batch),
                      str(a.seq_len), str(threads)]
            # Rounds alternate ddpt and PyTorch, so that a stretch of
            # interference from other tenants of the machine hits both sides.
            runs = {"ddpt": [], "torch": [], "torch_fair": [], "ddpt_bf16": [], "torch_bf16": []}
            for _ in range(a.rounds):
                d = run_json(ddpt_cmd, base_env)
                runs["ddpt"].append(d)
                if a.bf16:
                    runs["ddpt_bf16"].append(run_json(ddpt_cmd + ["--precision", "bf16"], base_env))
                if a.no_torch:
                    continue
                fair_env = dict(base_env, OPENBLAS_CORETYPE=d["blas_kernel"])
                runs["torch_fair"].append(run_json(worker, fair_env))
                runs["torch"].append(run_json(worker, base_env))
                if a.bf16:
                    runs["torch_bf16"].append(run_json(worker + ["--torch-bf16"], fair_env))
            row = {"preset": preset, "batch": batch, "threads": threads}
            for side, rs in runs.items():
                if rs:
                    row[side] = best_round(rs)
                    row[side + "_rounds"] = [r["step_time_median_s"] for r in rs]
            rows.append(row)

    hdr = (f"{'model':<11} {'B':>3} {'thr':>3} | {'ddpt tok/s':>10} {'s/step':>7} | "
           f"{'torch tok/s':>11} {'s/step':>7} | {'torch fair':>10} {'s/step':>7} | "
           f"{'speedup':>7} | {'MFU':>5} {'work MFU':>8} {'sgemm GF/s':>10} | {'RSS/pred':>8} | kernel")
    print_header(hdr)
    for r in rows:
        d = r["ddpt"]
        tt = or_dash(r.get("torch"), lambda t: f"{t['tokens_per_s']:>11.0f} {t['step_time_median_s']:>7.2f}", 11, 7)
        ff = or_dash(r.get("torch_fair"), lambda f: f"{f['tokens_per_s']:>10.0f} {f['step_time_median_s']:>7.2f}",
                     10, 7)
        sp = or_dash(r.get("torch_fair"), lambda f: f"{d['tokens_per_s'] / f['tokens_per_s']:>6.2f}x", 7)
        print(f"{r['preset']:<11} {r['batch']:>3} {r['threads']:>3} | {d['tokens_per_s']:>10.0f} "
              f"{d['step_time_median_s']:>7.2f} | {tt} | {ff} | {sp} | {d['mfu_vs_sgemm']:>5.2f} "
              f"{d['work_mfu_vs_sgemm']:>8.2f} {d['sgemm_gflops_per_s']:>10.1f} | "
              f"{d['rss_over_predicted']:>8.2f} | {d['blas_kernel']}")
    if a.bf16:
        print_bf16(rows)
    print(f"load average at end: {' '.join(load())}")
    if a.rounds > 1:
        print("rounds (median s/step of each round, ddpt | torch fair):")
        for r in rows:
            fair = r.get("torch_fair_rounds", [])
            ratio = (f"  (speedup of the median rounds {statistics.median(fair) / statistics.median(r['ddpt_rounds']):.2f}x)"
                     if fair else "")
            print(f"  {r['preset']} {r['threads']} thr: {' '.join(f'{x:.2f}' for x in r['ddpt_rounds'])}"
                  f" | {' '.join(f'{x:.2f}' for x in fair)}{ratio}")
    print("speedup: ddpt tokens/s over PyTorch with OPENBLAS_CORETYPE set to ddpt's kernel. "
          "MFU: (6 x parameters x tokens + attention) per second over the sgemm GFLOP/s ddpt "
          "measured; work MFU counts the FLOPs a step must do (MLM head at predicted tokens only).")


if __name__ == "__main__":
    main()
