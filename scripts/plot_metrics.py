#!/usr/bin/python3
"""Plots RUN_DIR/metrics.jsonl into RUN_DIR/metrics.png: training loss and
evaluation loss against tokens seen (top), learning rate (bottom).

usage: scripts/plot_metrics.py RUN_DIR [--out FILE]
Needs Debian's python3-matplotlib (scripts/install-deps.sh installs it)."""
import json
import os
import sys


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--out"):
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    run_dir = argv[1]
    out = argv[3] if len(argv) == 4 else os.path.join(run_dir, "metrics.png")
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        print(f"plot_metrics: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 1
    except json.JSONDecodeError as e:
        print(f"plot_metrics: {path} is not JSON lines ({e}); is it a ddpt run directory?", file=sys.stderr)
        return 1
    if not rows:
        print(f"plot_metrics: {path} has no lines yet", file=sys.stderr)
        return 1

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tokens = [r["tokens"] for r in rows]
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    ax_loss.plot(tokens, [r["loss"] for r in rows], label="training loss", lw=1)
    ev = [r for r in rows if r.get("eval_loss") is not None]
    if ev:
        ax_loss.plot([r["tokens"] for r in ev], [r["eval_loss"] for r in ev], "o-", label="eval loss")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_loss.set_title(os.path.basename(os.path.abspath(run_dir)))
    ax_lr.plot(tokens, [r["lr"] for r in rows], color="tab:green", lw=1)
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("tokens seen")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
