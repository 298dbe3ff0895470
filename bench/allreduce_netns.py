#!/usr/bin/python3
"""ddpt's gradient reduction across pretend machines: network namespaces
(tests/multihost/hosts.sh) whose links are held to each --rates x --delays
by netns_hub (tests/multihost/netns_hub.c, a userspace switch: this kernel
has no netem), on 2 and 4 hosts of one rank each, Open MPI over TCP.
bench_allreduce (bench/allreduce.c) calls ddpt's own reducer (comm.h), so
this measures what `ddpt train` pays, whatever algorithm the reducer runs.

For each link setting and host count it times single buckets of 4 KiB to
16 MiB (the fit) and bert-small's gradient arena (29.1 M floats) in 4 MiB
buckets; over the unshaped veth links (the kernel's own path, no hub), the
same, and bert-base's arena (110.1 M floats) in 8 MiB (configs' old value)
and 25 MiB buckets. Each time is the minimum over rounds (on a shared
machine the other rounds include waiting for a core); the median is
printed beside it. Before each hub setting, ping between two hosts shows
the round trip against 2 x delay; after it, the hub's own line says how
long frames waited past their due time.

Three models of one bucket of s bytes on p ranks, fitted by least squares
(alpha: latency per message in sequence, B: bandwidth per link):
  ring:      T = 2(p-1) alpha + 2(p-1)/p s/B
  binomial:  T = 2 ceil(log2 p) (alpha + s/B)    (reduce to a root, broadcast)
  ddpt:      T = 2 log2 p alpha + 2(p-1)/p s/B   (ddpt's reducer: recursive
             halving then doubling on 2^k ranks; its binomial tree otherwise)
A link setting whose fitted B is under 80% of its rate, where the unshaped
links carry no more, is CPU-bound: it is reported as saturated and left out
of the prediction, which redoes docs/scaling.md's bert-base table at 8, 64
and 512 ranks from the fitted link efficiency and each delay's alpha.

usage: bench/allreduce_netns.py [--build build] [--rates 1gbit,2.5gbit]
                                [--delays 0us,50us,500us] [--hosts 2,4]
Runs as root (namespaces need CAP_NET_ADMIN); about 3-5 minutes: no setting
starts after --budget-s (default 270). Needs ping (iputils-ping). Prints the
CPU, Open MPI version, kernel and links used, and the load average at start
and end.
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
PREDICT_GBIT, PREDICT_RANKS, PREDICT_BUCKETS_MB = 25.0, (8, 64, 512), (4, 8, 25, 50, 100)


def ddpt_seconds(nbytes, ranks, hop_latency, bw):
    """ddpt's reducer (docs/distributed.md, "Exact on any number of ranks"):
    on 2^k ranks recursive halving then doubling, 2 log2 N exchanges moving
    a ring's bytes; on other counts its binomial tree."""
    if ranks & (ranks - 1):
        return binomial_seconds(nbytes, ranks, hop_latency, bw)
    if ranks == 1:
        return 0.0
    return 2 * math.log2(ranks) * hop_latency + 2 * (ranks - 1) / ranks * nbytes / bw


MODELS = {"ring": ring_seconds, "binomial": binomial_seconds, "ddpt": ddpt_seconds}


def rate_bytes_per_s(rate):
    units = {"gbit": 1e9, "mbit": 1e6, "kbit": 1e3}
    for u, m in units.items():
        if rate.endswith(u):
            return float(rate[: -len(u)]) * m / 8
    raise ValueError(f"rate '{rate}': give e.g. 10gbit or 500mbit")


def delay_seconds(delay):
    units = {"us": 1e-6, "ms": 1e-3, "ns": 1e-9, "s": 1.0}
    for u, m in units.items():
        if delay.endswith(u):
            return float(delay[: -len(u)]) * m
    return float(delay)


def describe_machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mpi = subprocess.run(["mpirun", "--version"], stdout=subprocess.PIPE, text=True).stdout.splitlines()[0]
    return f"CPU: {cpu} ({os.cpu_count()} cpus); {mpi}; kernel {platform.release()}"


class Hosts:
    """The namespaces of one bench run, removed whatever happens."""

    def __init__(self, n, hub):
        self.prefix = f"ddpt-mh-{os.getpid()}"
        subprocess.run([HOSTS, "reap", "ddpt-mh"], check=True)
        self.hostfile = tempfile.NamedTemporaryFile("w", prefix="ddpt-hosts-", delete=False)
        self.hostfile.close()
        self.hub_log = tempfile.NamedTemporaryFile("w", prefix="ddpt-hub-", delete=False)
        self.hub_log.close()
        self.env = dict(os.environ, DDPT_NETNS_HUB=hub, DDPT_HUB_LOG=self.hub_log.name)
        subprocess.run([HOSTS, "up", self.prefix, str(n)], check=True)

    def shape(self, rate, delay, via):
        """via "hub": netns_hub at any delay; "veth": veth, tbf for a rate."""
        return subprocess.run([HOSTS, "hub" if via == "hub" else "shape", self.prefix, rate, delay], check=True,
                              stdout=subprocess.PIPE, text=True, env=self.env).stdout.strip()

    def hub_stats(self):
        """The stopped hub's line (hosts.sh stops it at the next shape)."""
        self.shape("none", "0us", "veth")
        lines = open(self.hub_log.name).read().splitlines()
        return lines[-1] if lines else "netns_hub wrote nothing"

    def ping(self):
        """Round trip from host 1 to host 2: min and mean ms of 20."""
        out = subprocess.run(["ip", "netns", "exec", f"{self.prefix}-h1", "ping", "-q", "-c", "20", "-i", "0.01",
                              "10.218.0.3"], stdout=subprocess.PIPE, text=True, check=True).stdout
        rtt = next(l for l in out.splitlines() if l.startswith("rtt")).split("=")[1].split("/")
        return float(rtt[0]), float(rtt[1])

    def reduce(self, bench, ranks, cases):
        with open(self.hostfile.name, "w") as f:
            f.write("".join(f"{self.prefix}-h{i} slots=1\n" for i in range(1, ranks + 1)))
        cmd = [HOSTS, "mpirun", self.prefix, "--hostfile", self.hostfile.name, "-np", str(ranks),
               bench, *[f"{b // 4}:{s // 4}:{r}" for b, s, r in cases]]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, timeout=600).stdout
        return [json.loads(l) for l in out.splitlines() if l.startswith("{")]

    def close(self):
        subprocess.run([HOSTS, "down", self.prefix])
        os.unlink(self.hostfile.name)
        os.unlink(self.hub_log.name)


def terms(model, p, s):
    """(messages in sequence, bytes through one link in sequence) of one
    allreduce of s bytes on p ranks."""
    if model == "ring" or (model == "ddpt" and not p & (p - 1)):
        return (2 * (p - 1) if model == "ring" else 2 * math.log2(p)), 2 * (p - 1) / p * s
    k = 2 * math.ceil(math.log2(p))
    return k, k * s


def fit(rows, model):
    """Hockney's two terms, as bench/ddp_vs_pytorch.py fits shared memory:
    B from the least-squares line t = c + bytes/B over the buckets of 1 MiB
    and more (where bandwidth decides), alpha from the smallest bucket
    (4 KiB, whose bytes take microseconds) per message in sequence: an
    intercept over large buckets is noise or negative. Returns alpha, B and
    the rms relative error over every bucket, which tells the models apart:
    from 2 to 4 ranks the ring's messages grow 3 times, ddpt's 2 times;
    the binomial tree's bytes 2 times, the others' 1.5 times."""
    big = [r for r in rows if r["bytes"] >= (1 << 20)]
    xs = [terms(model, r["ranks"], r["bytes"])[1] for r in big]
    ys = [r["t"] for r in big]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    bw = 1 / slope if slope > 0 else float("inf")
    small = min(r["bytes"] for r in rows)
    alpha = min(r["t"] / terms(model, r["ranks"], r["bytes"])[0] for r in rows if r["bytes"] == small)
    rms = math.sqrt(statistics.mean((MODELS[model](r["bytes"], r["ranks"], alpha, bw) / r["t"] - 1) ** 2
                                    for r in rows))
    return alpha, bw, rms


def better_model(fit_by_model, rate):
    """The model with the smaller error, of those whose bandwidth a shaped
    link could carry (a fit above the link's rate is the wrong model)."""
    ok = [m for m in MODELS if rate == "none" or fit_by_model[m][1] <= 1.1 * rate_bytes_per_s(rate)]
    return min(ok or MODELS, key=lambda m: fit_by_model[m][2])


def measure(hosts, bench, setting, host_counts, fit_cases, arenas):
    rows = []
    for p in host_counts:
        cases = [(b, b, FIT_ROUNDS[b]) for b in FIT_BYTES if fit_cases] + [(n * 4, s, 1) for n, s in arenas]
        for d in hosts.reduce(bench, p, cases):
            d["t"], d["median"] = min(d["seconds"]), statistics.median(d["seconds"])
            rows.append(dict(d, **setting))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--rates", default="1gbit,2.5gbit")
    ap.add_argument("--delays", default="0us,50us,500us")
    ap.add_argument("--hosts", default="2,4", help="host counts, one rank each")
    ap.add_argument("--compute-s", type=float, default=3.70,
                    help="bert-base compute per step and rank for the prediction (docs/scaling.md: 3.70 s)")
    ap.add_argument("--budget-s", type=float, default=270,
                    help="start no setting after this long (the bert-base arenas: no later than 60 s before)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("allreduce_netns: needs root (CAP_NET_ADMIN) to make network namespaces; run it with sudo")
    bench = os.path.abspath(os.path.join(a.build, "bench_allreduce"))
    hub = os.path.abspath(os.path.join(a.build, "netns_hub"))
    for exe in (bench, hub):
        if not os.access(exe, os.X_OK):
            sys.exit(f"allreduce_netns: no {exe}; build first (cmake --build {a.build} --target bench_allreduce "
                     "netns_hub)")
    host_counts = [int(n) for n in a.hosts.split(",")]
    print(describe_machine())
    print(f"load average at start: {load()}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.time()
    hosts = Hosts(max(host_counts), hub)
    rows, links = [], []
    try:
        small = [(BERT_SMALL_PARAMS, 4 << 20)]
        base = [(BERT_BASE_PARAMS, 8 << 20), (BERT_BASE_PARAMS, 25 << 20)]
        # (rate, delay, link, single buckets too, arenas, seconds it must leave)
        plan = [("none", "0us", "veth", True, small, 0)]
        plan += [(r, d, "hub", True, small, 0) for r in a.rates.split(",") for d in a.delays.split(",")]
        plan.append(("none", "0us", "veth", False, base, 60))  # the longest, last
        for rate, delay, link, fit_cases, arenas, leave in plan:
            if time.time() - started > a.budget_s - leave:
                print(f"budget of {a.budget_s:.0f} s spent: skipped {rate} {delay} {link}"
                      f"{'' if fit_cases else ' (bert-base arenas)'}")
                continue
            how = hosts.shape(rate, delay, link)
            rtt = hosts.ping() if link == "hub" else None
            rows += measure(hosts, bench, {"rate": rate, "delay": delay, "link": link}, host_counts, fit_cases,
                            arenas)
            stats = hosts.hub_stats() if link == "hub" else ""
            links.append((rate, delay, link, rtt, stats))
            print(f"measured {rate} {delay} {link}{'' if fit_cases else ' (bert-base arenas)'}: {how} "
                  f"({time.time() - started:.0f} s)", flush=True)
    finally:
        hosts.close()
    for r in rows:
        print(json.dumps(r), file=sys.stderr)
    report_links(links)
    report(rows, a)
    print(f"load average at end: {load()}")


def report_links(links):
    print("\nthe hub's links (ping: 20 round trips host 1 -> host 2 before measuring; "
          "netns_hub's line after):")
    for rate, delay, link, rtt, stats in links:
        if link != "hub":
            continue
        print(f"  {rate:<8} {delay:>6} | rtt min {rtt[0]:.3f} ms, mean {rtt[1]:.3f} ms; 2 x delay "
              f"{2e3 * delay_seconds(delay):.3f} ms | {stats.split(': ', 2)[-1]}")


def report(rows, a):
    settings = []
    for r in rows:
        key = (r["rate"], r["delay"], r["link"])
        if key not in settings:
            settings.append(key)
    single = [r for r in rows if r["buckets"] == 1]
    fits = {}
    for key in settings:
        sel = [r for r in single if (r["rate"], r["delay"], r["link"]) == key]
        if sel:
            fits[key] = {m: fit(sel, m) for m in MODELS}
    settings = [k for k in settings if k in fits]
    ceiling = max(fits[k]["ddpt"][1] for k in settings if k[0] == "none")
    print(f"\nfits per setting (single buckets of 4 KiB .. 16 MiB on {a.hosts} hosts; t = min over rounds; "
          f"rms err over every bucket; * = the better model; alpha - alpha(0) against the delay):")
    print(f"  {'link':<8} {'delay':>6} {'via':<4} | {'model':<8} {'alpha us':>9} {'-alpha0':>8} {'B Gbit/s':>9} "
          f"{'rms err':>7} | note")
    best = {key: better_model(fits[key], key[0]) for key in settings}
    for key in settings:
        rate, delay, link = key
        zero = fits.get((rate, "0us", link))
        for m in MODELS:
            alpha, bw, rms = fits[key][m]
            extra = f"{1e6 * (alpha - zero[m][0]):>8.1f}" if zero and delay != "0us" else f"{'':>8}"
            note = ""
            if rate != "none" and saturated(bw, rate, ceiling):
                note = f"saturated: unshaped links carry {8 * ceiling / 1e9:.2f} Gbit/s here (CPU-bound)"
            elif rate != "none":
                note = f"B = {100 * bw / rate_bytes_per_s(rate):.0f}% of the link"
            star = "*" if m == best[key] else " "
            print(f"  {rate:<8} {delay:>6} {link:<4} | {m:<7}{star} {1e6 * alpha:>9.1f} {extra} {8 * bw / 1e9:>9.3f} "
                  f"{100 * rms:>6.1f}% | {note}")
    print("\nmeasured vs predicted by ddpt's model (whole arenas predicted as buckets x T):")
    print(f"  {'link':<8} {'delay':>6} {'via':<4} {'hosts':>5} {'bytes':>11} {'bucket':>9} {'buckets':>7} | "
          f"{'min s':>8} {'median s':>8} | {'predicted s':>11} {'error':>6}")
    for r in rows:
        key = (r["rate"], r["delay"], r["link"])
        alpha, bw, _ = fits[key]["ddpt"]
        last = r["bytes"] - (r["buckets"] - 1) * r["bucket_bytes"]
        pred = (r["buckets"] - 1) * ddpt_seconds(r["bucket_bytes"], r["ranks"], alpha, bw) + \
            ddpt_seconds(last, r["ranks"], alpha, bw)
        print(f"  {r['rate']:<8} {r['delay']:>6} {r['link']:<4} {r['ranks']:>5} {r['bytes']:>11} "
              f"{r['bucket_bytes']:>9} {r['buckets']:>7} | {r['t']:>8.4f} {r['median']:>8.4f} | "
              f"{pred:>11.4f} {100 * (pred / r['t'] - 1):>5.0f}%")
    predict_cluster(fits, settings, ceiling, a)


def predict_cluster(fits, settings, ceiling, a):
    """docs/scaling.md's bert-base table from the fitted numbers: the link
    efficiency of ddpt's model at the slowest unsaturated rate (its delay-0
    setting) scaled to PREDICT_GBIT, and each measured delay's alpha."""
    usable = [k for k in settings if k[2] == "hub" and not saturated(fits[k]["ddpt"][1], k[0], ceiling)]
    if not usable:
        print("\nno unsaturated link setting: no prediction (every shaped rate was CPU-bound here)")
        return
    slowest = min(rate_bytes_per_s(k[0]) for k in usable)
    at_rate = [k for k in usable if rate_bytes_per_s(k[0]) == slowest]
    key = min(at_rate, key=lambda k: delay_seconds(k[1]))
    eff = min(1.0, fits[key]["ddpt"][1] / rate_bytes_per_s(key[0]))
    net = PREDICT_GBIT * 1e9 / 8 * eff
    print(f"\nprediction, bert-base ({BERT_BASE_PARAMS} parameters, batch 8 x 128 per rank): "
          f"{PREDICT_GBIT:g} Gbit/s links at the {100 * eff:.0f}% efficiency fitted at {key[0]} {key[1]} "
          f"(ddpt's model); alpha of each delay at {key[0]}; efficiency = compute / step with buckets "
          f"overlapping backward (bench/ddp_vs_pytorch.py's model)")
    print(f"  {'alpha us':>8} {'compute':>7} {'model':<8} {'bucket':>6} | " +
          " ".join(f"{'eff@' + str(n):>8}" for n in PREDICT_RANKS) + f" | {'comm s@' + str(PREDICT_RANKS[-1]):>11}")
    for k in at_rate:
        alpha = fits[k]["ddpt"][0]
        for compute in (a.compute_s, a.compute_s / 10):
            for m, mb in [("ddpt", mb) for mb in PREDICT_BUCKETS_MB] + [("ring", 25), ("binomial", 25)]:
                ps = [predict(compute, BERT_BASE_PARAMS, BERT_BASE_EMBEDDING, mb << 20, n, alpha, net, MODELS[m])
                      for n in PREDICT_RANKS]
                print(f"  {1e6 * alpha:>8.0f} {compute:>6.2f}s {m:<8} {mb:>4}MB | " +
                      " ".join(f"{100 * p['efficiency_overlap']:>7.0f}%" for p in ps) +
                      f" | {ps[-1]['comm_s']:>11.3f}")
    print("(ddpt: the reducer on 2^k ranks; ring and binomial: for comparison)")


def saturated(bw, rate, ceiling):
    """A shaped rate the machine cannot carry: the fit falls short of it
    and the unshaped links carry no more than about that rate."""
    link = rate_bytes_per_s(rate)
    return bw < 0.8 * link and link > 0.8 * ceiling


if __name__ == "__main__":
    main()
