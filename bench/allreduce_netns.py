#!/usr/bin/python3
"""ddpt's gradient reduction across pretend machines: network namespaces
joined by a bridge (tests/multihost/hosts.sh), links shaped by tc to each
--rates x --delays, 2 and 3 hosts of one rank each, Open MPI over TCP.
bench_allreduce (bench/allreduce.c) calls ddpt's own reducer (comm.h), so
this measures what `ddpt train` pays, whatever algorithm the reducer runs.

For each link setting and host count it times single buckets of 4 KiB to
16 MiB (the fit) and whole gradient arenas: bert-small's (29.1 M floats) in
4 MiB buckets, its config's bucket_mb, and, at the fastest setting, bert-base's
(110.1 M floats) in 8 MiB (configs/bert-base.ini) and 25 MiB buckets. Each
time is the minimum over rounds (on a shared machine the other rounds
include waiting for a core); the median is printed beside it.

Two models of one bucket of s bytes on p ranks, fitted by least squares
(alpha: latency per message, B: bandwidth per link):
  ring:      T = 2(p-1) alpha + 2(p-1)/p s/B
  binomial:  T = 2 ceil(log2 p) (alpha + s/B)    (reduce to a root, broadcast)
Open MPI 4.1's MPI_Iallreduce (coll/libnbc) runs the binomial tree for
in-place buffers and fewer than 4 ranks; `--ring` adds the same
measurements with --mca coll_libnbc_iallreduce_algorithm 1 (ring).
A link setting whose fitted B is under 80% of its rate, where the unshaped
links carry no more, is CPU-bound: it is reported as saturated and left out
of the prediction, which redoes docs/scaling.md's bert-base table at 8, 64
and 512 ranks from the fitted alpha and link efficiency.

usage: bench/allreduce_netns.py [--build build] [--rates 1gbit,10gbit,25gbit]
                                [--delays 50us,500us] [--ring] [--compute-s 3.70]
Runs as root (namespaces need CAP_NET_ADMIN); about 2-4 minutes: no setting
starts after --budget-s (default 240). Prints the CPU, Open MPI version,
kernel and shaping used, and the load average at start and end.
"""
import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ddp_vs_pytorch import binomial_seconds, load, predict, ring_seconds  # noqa: E402

HOSTS = os.path.join(HERE, "..", "tests", "multihost", "hosts.sh")
FIT_BYTES = [4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20]
FIT_ROUNDS = {4 << 10: 40, 64 << 10: 15, 1 << 20: 9, 4 << 20: 4, 16 << 20: 3}
BERT_SMALL_PARAMS = 29_058_876   # ddpt model info --preset bert-small
BERT_BASE_PARAMS = 110_106_428   # ddpt model info --preset bert-base (NSP head on)
BERT_BASE_EMBEDDING = 30522 * 768 + 512 * 768 + 2 * 768 + 2 * 768
MODELS = {"ring": ring_seconds, "binomial": binomial_seconds}
PREDICT_GBIT, PREDICT_RANKS, PREDICT_BUCKETS_MB = 25.0, (8, 64, 512), (4, 8, 25, 50, 100)


def rate_bytes_per_s(rate):
    units = {"gbit": 1e9, "mbit": 1e6, "kbit": 1e3}
    for u, m in units.items():
        if rate.endswith(u):
            return float(rate[: -len(u)]) * m / 8
    raise ValueError(f"rate '{rate}': give e.g. 10gbit or 500mbit")


def describe_machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mpi = subprocess.run(["mpirun", "--version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    return f"CPU: {cpu} ({os.cpu_count()} cpus); {mpi}; kernel {platform.release()}"


class Hosts:
    """The namespaces of one bench run, removed whatever happens."""

    def __init__(self, n):
        self.prefix = f"ddpt-mh-{os.getpid()}"
        subprocess.run([HOSTS, "reap", "ddpt-mh"], check=True)
        self.hostfile = tempfile.NamedTemporaryFile("w", prefix="ddpt-hosts-", delete=False)
        self.hostfile.write("".join(f"{self.prefix}-h{i} slots=1\n" for i in range(1, n + 1)))
        self.hostfile.close()
        subprocess.run([HOSTS, "up", self.prefix, str(n)], check=True)

    def shape(self, rate, delay):
        return subprocess.run([HOSTS, "shape", self.prefix, rate, delay], check=True, stdout=subprocess.PIPE,
                              text=True).stdout.strip()

    def reduce(self, bench, ranks, cases, extra_mca=()):
        cmd = [HOSTS, "mpirun", self.prefix, *extra_mca, "--hostfile", self.hostfile.name, "-np", str(ranks),
               bench, *[f"{b // 4}:{s // 4}:{r}" for b, s, r in cases]]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, timeout=600).stdout
        return [json.loads(l) for l in out.splitlines() if l.startswith("{")]

    def close(self):
        subprocess.run([HOSTS, "down", self.prefix])
        os.unlink(self.hostfile.name)


def terms(model, p, s):
    """(messages in sequence, bytes through one link in sequence) of one
    allreduce of s bytes on p ranks."""
    if model == "ring":
        return 2 * (p - 1), 2 * (p - 1) / p * s
    k = 2 * math.ceil(math.log2(p))
    return k, k * s


def fit(rows, model):
    """Hockney's two terms, as bench/ddp_vs_pytorch.py fits shared memory:
    B from the least-squares line t = c + bytes/B over the buckets of 1 MiB
    and more (where bandwidth decides), alpha from the smallest bucket
    (4 KiB, whose bytes take microseconds) per message in sequence: an
    intercept over large buckets is noise or negative, and subtracting the
    fitted bytes' time from a message that passed tbf's bucket unshaped
    leaves nothing. Returns alpha, B and the rms relative error over the
    large buckets, which tells the two models apart: from 2 to 3 ranks the
    ring's time grows 4/3 times, the binomial tree's 2 times."""
    big = [r for r in rows if r["bytes"] >= (1 << 20)]
    xs = [terms(model, r["ranks"], r["bytes"])[1] for r in big]
    ys = [r["t"] for r in big]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    bw = 1 / slope if slope > 0 else float("inf")
    small = min(r["bytes"] for r in rows)
    alpha = min(r["t"] / terms(model, r["ranks"], r["bytes"])[0] for r in rows if r["bytes"] == small)
    rms = math.sqrt(statistics.mean((MODELS[model](r["bytes"], r["ranks"], alpha, bw) / r["t"] - 1) ** 2
                                    for r in big))
    return alpha, bw, rms


def better_model(fit_by_model, rate):
    """The model with the smaller error, of those whose bandwidth a shaped
    link could carry (a fit above the link's rate is the wrong model)."""
    ok = [m for m in MODELS if rate == "none" or fit_by_model[m][1] <= 1.1 * rate_bytes_per_s(rate)]
    return min(ok or MODELS, key=lambda m: fit_by_model[m][2])


def measure(hosts, bench, setting, max_ranks, fit_cases, arenas, extra_mca):
    rows = []
    for p in range(2, max_ranks + 1):
        cases = [(b, b, FIT_ROUNDS[b]) for b in FIT_BYTES if fit_cases] + [(n * 4, s, 1) for n, s in arenas]
        for d in hosts.reduce(bench, p, cases, extra_mca):
            d["t"], d["median"] = min(d["seconds"]), statistics.median(d["seconds"])
            rows.append(dict(d, **setting))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--rates", default="1gbit,10gbit,25gbit")
    ap.add_argument("--delays", default="50us,500us")
    ap.add_argument("--hosts", type=int, default=3, help="up to this many hosts (2..N), one rank each")
    ap.add_argument("--ring", action="store_true", help="also force libnbc's ring (coll_libnbc_iallreduce_algorithm 1)")
    ap.add_argument("--compute-s", type=float, default=3.70,
                    help="bert-base compute per step and rank for the prediction (docs/scaling.md: 3.70 s)")
    ap.add_argument("--budget-s", type=float, default=240,
                    help="start no setting after this long (the bert-base arenas: no later than 60 s before)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("allreduce_netns: needs root (CAP_NET_ADMIN) to make network namespaces; run it with sudo")
    bench = os.path.abspath(os.path.join(a.build, "bench_allreduce"))
    if not os.access(bench, os.X_OK):
        sys.exit(f"allreduce_netns: no {bench}; build first (cmake --build {a.build} --target bench_allreduce)")
    print(describe_machine())
    print(f"load average at start: {load()}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.time()
    hosts = Hosts(a.hosts)
    rows, shaping = [], {}
    try:
        small = [(BERT_SMALL_PARAMS, 4 << 20)]
        base = [(BERT_BASE_PARAMS, 8 << 20), (BERT_BASE_PARAMS, 25 << 20)]
        # (rate, delay, algorithm, single buckets too, arenas, seconds it must leave)
        plan = [("none", "0us", "default", True, small, 0)]
        plan += [(r, d, "default", True, small, 0) for r in a.rates.split(",") for d in a.delays.split(",")]
        if a.ring:  # at the slowest link, where the wire, not the CPU, decides
            slowest = min(a.rates.split(","), key=rate_bytes_per_s)
            plan.append((slowest, a.delays.split(",")[0], "ring", True, small, 0))
        plan.append(("none", "0us", "default", False, base, 60))  # the longest, last
        for rate, delay, algo, fit_cases, arenas, leave in plan:
            if time.time() - started > a.budget_s - leave:
                print(f"budget of {a.budget_s:.0f} s spent: skipped {rate} {delay} {algo}"
                      f"{'' if fit_cases else ' (bert-base arenas)'}")
                continue
            how = hosts.shape(rate, delay)
            if "no added delay" in how and delay != a.delays.split(",")[0] and rate != "none":
                continue  # without netem every delay is the same setting
            shaping[(rate, delay)] = how
            mca = ["--mca", "coll_libnbc_iallreduce_algorithm", "1"] if algo == "ring" else []
            setting = {"rate": rate, "delay": delay if "netem" in how else "0us", "algo": algo}
            rows += measure(hosts, bench, setting, a.hosts, fit_cases, arenas, mca)
            print(f"measured {rate} {setting['delay']} {algo}{'' if fit_cases else ' (bert-base arenas)'}: {how} "
                  f"({time.time() - started:.0f} s)", flush=True)
    finally:
        hosts.close()
    for r in rows:
        print(json.dumps(r), file=sys.stderr)
    report(rows, a)
    print(f"load average at end: {load()}")


def report(rows, a):
    settings = []
    for r in rows:
        key = (r["rate"], r["delay"], r["algo"])
        if key not in settings:
            settings.append(key)
    single = [r for r in rows if r["buckets"] == 1]
    fits = {}
    for key in settings:
        sel = [r for r in single if (r["rate"], r["delay"], r["algo"]) == key]
        fits[key] = {m: fit(sel, m) for m in MODELS}
    ceiling = max(fits[k]["binomial"][1] for k in settings if k[0] == "none" and k[2] == "default")
    print(f"\nfits per setting (single buckets of 4 KiB .. 16 MiB on 2..{a.hosts} hosts; t = min over rounds; "
          f"rms err over buckets >= 1 MiB; * = the better model):")
    print(f"  {'link':<8} {'delay':>6} {'algorithm':<9} | {'model':<8} {'alpha us':>9} {'B Gbit/s':>9} "
          f"{'rms err':>7} | note")
    best = {key: better_model(fits[key], key[0]) for key in settings}
    for key in settings:
        rate, delay, algo = key
        for m in MODELS:
            alpha, bw, rms = fits[key][m]
            note = ""
            if rate != "none" and saturated(bw, rate, ceiling):
                note = f"saturated: unshaped links carry {8 * ceiling / 1e9:.2f} Gbit/s here (CPU-bound)"
            elif rate != "none":
                note = f"B = {100 * bw / rate_bytes_per_s(rate):.0f}% of the link"
            star = "*" if m == better_model(fits[key], rate) else " "
            print(f"  {rate:<8} {delay:>6} {algo:<9} | {m:<7}{star} {1e6 * alpha:>9.1f} {8 * bw / 1e9:>9.3f} "
                  f"{100 * rms:>6.1f}% | {note}")
    print("\nmeasured vs predicted (each setting's better-fitting model; whole arenas predicted as buckets x T):")
    print(f"  {'link':<8} {'delay':>6} {'algo':<8} {'hosts':>5} {'bytes':>11} {'bucket':>9} {'buckets':>7} | "
          f"{'min s':>8} {'median s':>8} | {'model':<8} {'predicted s':>11} {'error':>6}")
    for r in rows:
        key = (r["rate"], r["delay"], r["algo"])
        m = best[key]
        alpha, bw, _ = fits[key][m]
        last = r["bytes"] - (r["buckets"] - 1) * r["bucket_bytes"]
        pred = (r["buckets"] - 1) * MODELS[m](r["bucket_bytes"], r["ranks"], alpha, bw) + \
            MODELS[m](last, r["ranks"], alpha, bw)
        print(f"  {r['rate']:<8} {r['delay']:>6} {r['algo']:<8} {r['ranks']:>5} {r['bytes']:>11} "
              f"{r['bucket_bytes']:>9} {r['buckets']:>7} | {r['t']:>8.4f} {r['median']:>8.4f} | {m:<8} "
              f"{pred:>11.4f} {100 * (pred / r['t'] - 1):>5.0f}%")
    predict_cluster(fits, best, settings, ceiling, a)


def predict_cluster(fits, best, settings, ceiling, a):
    """docs/scaling.md's bert-base table from the fitted numbers: alpha and
    link efficiency of the default algorithm's fit at the slowest
    unsaturated link, scaled to PREDICT_GBIT."""
    usable = [k for k in settings if k[0] != "none" and k[2] == "default"
              and not saturated(fits[k][best[k]][1], k[0], ceiling)]
    if not usable:
        print("\nno unsaturated link setting: no prediction (every shaped rate was CPU-bound here)")
        return
    key = min(usable, key=lambda k: rate_bytes_per_s(k[0]))
    _, bw, _ = fits[key][best[key]]
    # A 4 KiB message passes any rate shaping at once (it fits in tbf's
    # bucket, and netem's rate term is microseconds), so every setting with
    # the same added delay samples the same per-message cost: take the least
    # disturbed (on a busy machine the others include waiting for a core).
    alpha = min(fits[k][best[k]][0] for k in settings if k[1] == key[1] and k[2] == "default")
    eff = min(1.0, bw / rate_bytes_per_s(key[0]))
    net = PREDICT_GBIT * 1e9 / 8 * eff
    print(f"\nprediction, bert-base ({BERT_BASE_PARAMS} parameters, batch 8 x 128 per rank): "
          f"{PREDICT_GBIT:g} Gbit/s links at the {100 * eff:.0f}% efficiency fitted at {key[0]} {key[1]}, alpha "
          f"{1e6 * alpha:.0f} us (the least of the settings with delay {key[1]}); ddpt's reducer measured "
          f"as {best[key]}; efficiency = compute / step "
          f"with buckets overlapping backward (bench/ddp_vs_pytorch.py's model)")
    if alpha > 1e-3:
        print("  alpha over 1 ms is this machine's scheduler (other processes hold the cores), not a network: "
              "rerun on a quiet machine")
    print(f"  {'compute':>7} {'algorithm':<9} {'bucket':>6} | " +
          " ".join(f"{'eff@' + str(n):>8}" for n in PREDICT_RANKS) + f" | {'comm s@' + str(PREDICT_RANKS[-1]):>11}")
    for compute in (a.compute_s, a.compute_s / 10):
        for m in MODELS:
            for mb in PREDICT_BUCKETS_MB:
                ps = [predict(compute, BERT_BASE_PARAMS, BERT_BASE_EMBEDDING, mb << 20, n, alpha, net, MODELS[m])
                      for n in PREDICT_RANKS]
                print(f"  {compute:>6.2f}s {m:<9} {mb:>4}MB | " +
                      " ".join(f"{100 * p['efficiency_overlap']:>7.0f}%" for p in ps) + f" | {ps[-1]['comm_s']:>11.3f}")
    print("(ring: what --mca coll_libnbc_iallreduce_algorithm 1 selects; binomial: Open MPI 4.1's choice for "
          "in-place buffers)")


def saturated(bw, rate, ceiling):
    """A shaped rate the machine cannot carry: the fit falls short of it
    and the unshaped links carry no more than about that rate."""
    link = rate_bytes_per_s(rate)
    return bw < 0.8 * link and link > 0.8 * ceiling


if __name__ == "__main__":
    main()
