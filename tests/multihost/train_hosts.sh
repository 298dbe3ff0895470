#!/bin/sh
# ddpt across "machines": two network namespaces (tests/multihost/hosts.sh),
# one rank on each, Open MPI over TCP between them, launched through the
# rsh agent.
#  1. Over links of 10 Gbit/s and 50 us through netns_hub (the delaying
#     switch), 2 hosts x 1 rank give parameters and optimizer state
#     bit-identical to 1 host x 2 ranks (shared memory), and equal to 1 rank
#     with the whole batch within train_mpi.sh's bound (2e-6, SGD, dropout
#     off). The hub's own count shows that every step's gradient crossed it
#     (no timing is asserted: how late frames were is printed only).
#  2. Over veth links shaped by tbf (10 Gbit/s, no delay), every process of
#     one host killed mid-run ends the job within 30 s;
#     the output names the lost host (mpirun: "lost communication with a
#     remote daemon ... on node H") and its rank (ddpt's "hosts:" line).
# Without the right to make namespaces (CAP_NET_ADMIN and CAP_SYS_ADMIN),
# it prints "skipped: needs CAP_NET_ADMIN" and exits 77 (ctest: skipped).
# usage: train_hosts.sh DDPT MPIRUN NETNS_HUB
set -eu
ddpt=$1 mpirun=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/lib/e2e.sh
. "$here/../lib/e2e.sh"
export DDPT_NETNS_HUB="$3" DDPT_HUB_LOG="$dir/hub.log"
lib=$here/../lib
hosts=$here/hosts.sh
stem=ddpt-mh prefix=ddpt-mh-$$
"$hosts" probe "$prefix" ||
  { echo "train_hosts: skipped: needs CAP_NET_ADMIN (cannot create network namespaces here)"; exit 77; }
# Leftovers of a run killed before its trap ran, then ours, always.
"$hosts" reap "$stem"
trap '"$hosts" down "$prefix"; rm -rf "$dir"' EXIT
trap 'exit 1' INT TERM
"$hosts" up "$prefix" 2
echo "train_hosts: links: $("$hosts" shape "$prefix" 10gbit 50us)"
printf '%s-h1 slots=1\n%s-h2 slots=1\n' "$prefix" "$prefix" >"$dir/hostfile"

"$lib/even_corpus.sh" "$ddpt" "$dir" || fail "making the corpus failed"
printf '[model]\npreset = bert-tiny\n' >"$dir/tiny.ini"
common="--threads 1 --set data.corpus=$dir/corpus --set train.steps=10 --set log.every=1 \
  --set log.eval_every=0 --set checkpoint.every=10 --set optim.name=sgd --set optim.lr=0.05 \
  --set optim.momentum=0.9 --set schedule.kind=constant --set schedule.warmup_steps=0 \
  --set model.hidden_dropout_prob=0 --set model.attention_probs_dropout_prob=0"
run() { # name batch launcher...
  name=$1 b=$2; shift 2
  # shellcheck disable=SC2086
  "$@" "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/$name" $common --set train.batch_size="$b" \
    >"$dir/$name.out" 2>&1 || { cat "$dir/$name.out"; fail "$name failed"; }
}
run one 12
run onehost 6 mpi -np 2
run twohosts 6 "$hosts" mpirun "$prefix" --hostfile "$dir/hostfile" -np 2
grep -q "^hosts: $prefix-h1: rank 0; $prefix-h2: rank 1$" "$dir/twohosts.out" ||
  { cat "$dir/twohosts.out"; fail "the ranks did not run one on each host"; }

# Back to veth links (for part 2): the hub stops and writes its count.
echo "train_hosts: links: $("$hosts" shape "$prefix" 10gbit 0us)"
grep -q "rate 10gbit, delay 50us: " "$dir/hub.log" 2>/dev/null ||
  fail "netns_hub left no line for 10gbit and 50us in $dir/hub.log: the 2-host run did not cross it"
echo "train_hosts: $(cat "$dir/hub.log")"

"$py" - "$dir" <<'PY' || fail "the 2-host run differs, or its gradients did not cross the hub (above)"
import h5py, numpy as np, sys
d = sys.argv[1]
def tensors(name, group):
    with h5py.File(f"{d}/{name}/ckpt-00000010.h5", "r") as f:
        out = {}
        f[group].visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
        return out
for group in ("params", "optim"):
    a, b = tensors("twohosts", group), tensors("onehost", group)
    assert a and a.keys() == b.keys(), f"/{group}: different tensors"
    differ = [k for k in a if not np.array_equal(a[k], b[k])]
    assert not differ, f"/{group}: 2 hosts x 1 rank differ from 1 host x 2 ranks in {differ[:3]}"
    print(f"train_hosts: /{group}: {len(a)} tensors bit-identical, 2 hosts x 1 rank = 1 host x 2 ranks")
# Halving then doubling on 2 ranks: each rank sends its whole gradient (as
# many floats as parameters) once per step, 10 steps.
hub = open(f"{d}/hub.log").read()
crossed = int(hub.split(" frames (")[1].split(" bytes")[0])
params = sum(v.size for v in tensors("twohosts", "params").values())
assert crossed >= 10 * 2 * 4 * params, f"{crossed} bytes crossed the hub, under 10 steps x 2 ranks x {params} floats"
print(f"train_hosts: {crossed} bytes crossed the hub, >= 10 steps x 2 ranks x {params} floats")
p, ref = tensors("twohosts", "params"), tensors("one", "params")
worst = max(float(np.max(np.abs(p[k] - ref[k]))) for k in ref)
print(f"train_hosts: 2 hosts: max |param - 1-rank param| = {worst:.2e}")
assert worst <= 2e-6, f"2 hosts differ from 1 rank by {worst}"
PY

# 2. A host lost mid-run: kill everything inside its namespace.
"$hosts" mpirun "$prefix" --hostfile "$dir/hostfile" -np 2 "$ddpt" train "$dir/tiny.ini" --run-dir "$dir/kill" \
  --threads 1 --set data.corpus="$dir/corpus" --set train.steps=1000000 --set train.batch_size=4 \
  --set log.eval_every=0 --set checkpoint.every=0 >"$dir/kill.out" 2>&1 &
job=$!
wait_for $job "$dir/kill.out" "the 2-host run did not start" grep -q "^step 10/" "$dir/kill.out"
start=$(date +%s)
for pid in $(ip netns pids "$prefix-h2"); do kill -9 "$pid" 2>/dev/null || true; done
wait_ended $job 30 "job still running 30 s after host $prefix-h2 was killed"
[ $rc -ne 0 ] || fail "mpirun exited 0 after a host was killed"
if ! grep -q "^hosts: $prefix-h1: rank 0; $prefix-h2: rank 1$" "$dir/kill.out" ||
  ! grep -q "Remote daemon: .* on node $prefix-h2$" "$dir/kill.out"; then
  cat "$dir/kill.out"; fail "the output does not name the lost host $prefix-h2 and its rank"
fi
echo "train_hosts: host $prefix-h2 (rank 1) killed -> mpirun exit $rc after $(($(date +%s) - start)) s," \
  "named in:$(grep "Remote daemon:" "$dir/kill.out" | tr -s ' ')"
echo "train_hosts: ok"
