#!/bin/sh
# The model commands end to end: `ddpt model info` prints BERT-base's
# published parameter count, an impossible batch fails at start with the
# figures, `ddpt bench train` prints its JSON line, and the OpenBLAS kernel
# choice respects a user's OPENBLAS_CORETYPE and otherwise runs the class the
# CPU flags in /proc/cpuinfo allow.
set -u
ddpt=$1
status=0
fail() { echo "model_cli: $1"; status=1; }
small="--preset bert-tiny --set num_hidden_layers=1 --batch 2 --seq-len 16 --steps 1 --warmup 0 --threads 1"

out=$("$ddpt" model info --preset bert-base --batch 8 --seq-len 128) || fail "model info exited $?"
echo "$out" | grep -q "^parameters:  110106428$" || fail "model info: bert-base count: $out"
echo "$out" | grep -q "activations" || fail "model info: no activation memory"

# ZeRO-1: on 4 ranks each keeps a quarter of bert-base's 840.0 MiB of Adam
# state, and the total per rank falls by the other three quarters (beside
# what the exchange adds on 4 ranks, below).
base=$(echo "$out" | awk '$1 == "total" {t = $2} $1 == "gradient" || $1 == "lookup" {x += $3} END {print t - x}')
z=$("$ddpt" model info --preset bert-base --batch 8 --seq-len 128 --world 4 --zero 1) || fail "model info --zero 1 exited $?"
echo "$z" | awk -v base="$base" '$1 == "adam" {a = $5} $1 == "total" {t = $2}
  $1 == "gradient" || $1 == "lookup" {x += $3}
  END {d = base - (t - x) - 630.0; exit !(a == 210.0 && d < 0.2 && d > -0.2)}' ||
  fail "model info --world 4 --zero 1: Adam state not a quarter per rank (total less the exchange $base at zero 0): $z"

# The gradient exchange (comm_reducer_bytes): one rank and one micro-batch
# need no buffer; accumulation 4 keeps two partial sums of the gradients
# (the level-pairwise order); 2 ranks receive half a 25 MiB bucket for each
# of 4 buckets in flight, 3 ranks (binomial tree) a whole one. Pretraining's
# lookup rows: 8 x 128 tokens on one rank are 1024 rows of 768 floats and
# their tables (3.0 MiB and 0.13); accumulation 4: 4096 rows and two partial
# sums of them (3 x 12 MiB); 2 ranks: 2048 rows (6 MiB) and half of them to
# receive in one bucket (3 MiB), or two half buckets of 4 MiB; 3 ranks: 3072
# rows and a whole bucket of them (2 x 9 MiB).
exch() { # args: the exchange's and lookup rows' figures
  "$ddpt" model info --preset bert-base --batch 8 --seq-len 128 "$@" |
    awk '$1 == "gradients" {g = $2} $1 == "gradient" {x = $3} $1 == "lookup" {l = $3} END {print g, x, l}'
}
[ "$(exch)" = "420.0 0.0 3.1" ] || fail "model info, 1 rank: gradients, exchange, lookup rows: $(exch)"
[ "$(exch --accumulation 4)" = "420.0 840.0 36.2" ] || fail "model info --accumulation 4: $(exch --accumulation 4)"
[ "$(exch --world 2)" = "420.0 50.0 9.1" ] || fail "model info --world 2: $(exch --world 2)"
[ "$(exch --world 3)" = "420.0 100.0 18.1" ] || fail "model info --world 3: $(exch --world 3)"
[ "$(exch --world 2 --bucket-mb 4)" = "420.0 8.0 10.1" ] ||
  fail "model info --world 2 --bucket-mb 4: $(exch --world 2 --bucket-mb 4)"
"$ddpt" model info --bucket-mb 0 >/dev/null 2>&1 && fail "model info --bucket-mb 0 accepted"
# Fine-tuning keeps the whole word-embedding gradient as rows with zero = 0:
# in 200 MiB buckets the arena's exchange is then 2 of them (417.7 MiB of
# gradients less the word embeddings' 89.4), half of each received: 200
# MiB, and the rows are pretraining's on 2 ranks; zero = 1 sums the word
# embeddings in the arena (3 buckets, 300 MiB), with no rows.
ft="--set task=classify --set num_labels=3 --world 2 --bucket-mb 200"
# shellcheck disable=SC2086
[ "$(exch $ft)" = "417.7 200.0 9.1" ] || fail "model info, classify on 2 ranks: $(exch $ft)"
# shellcheck disable=SC2086
[ "$(exch $ft --zero 1)" = "417.7 300.0 " ] || fail "model info, classify on 2 ranks, zero 1: $(exch $ft --zero 1)"
"$ddpt" model info --zero 2 >/dev/null 2>&1 && fail "model info --zero 2 accepted"

# bf16 (issue 17): the fp32 figures plus the bf16 weights (2 bytes per
# parameter: 210.0 MiB) and operand buffers, less what keeping the attention
# context in bf16 saves (12 layers x 1024 tokens x 768 x 2 bytes = 18.0
# MiB), in the total; bench reports the buffers it used, within their
# estimate.
fp32=$(echo "$out" | awk '$1 == "total" {print $2}')
act=$(echo "$out" | awk '$1 == "activations" {print $2}')
out=$("$ddpt" model info --preset bert-base --batch 8 --seq-len 128 --precision bf16) || fail "model info --precision bf16 exited $?"
echo "$out" | awk -v fp32="$fp32" -v act="$act" '$1 == "bf16" {add += $3} $1 == "bf16" && $2 == "weights" {w = $3}
  $1 == "activations" {a = $2} $1 == "total" {t = $2}
  END {s = act - a; d = t - fp32 - add + s; exit !(w == 210.0 && add > w && s == 18.0 && d < 0.2 && d > -0.2)}' ||
  fail "model info --precision bf16: figures do not add up (fp32 total $fp32, activations $act): $out"
if "$ddpt" version | grep -q "precision = bf16 supported"; then
  out=$("$ddpt" bench train $small --precision bf16 2>&1) || fail "bench train --precision bf16: $out"
  echo "$out" | /usr/bin/python3 -c 'import json, sys
d = json.loads(sys.stdin.read().strip().splitlines()[-1])
assert d["precision"] == "bf16" and 0 < d["bf16_operand_bytes_used"] <= d["bf16_operand_bytes_predicted"], d' ||
    fail "bench train --precision bf16: operand buffers beyond their estimate: $out"
fi

out=$("$ddpt" bench train --preset bert-base --batch 100000 --seq-len 512 --steps 1 2>&1); rc=$?
[ $rc = 1 ] || fail "impossible batch: exit $rc, want 1"
echo "$out" | grep -q "GiB" || fail "impossible batch: message lacks the figure: $out"

out=$(OPENBLAS_CORETYPE=Prescott "$ddpt" bench train $small 2>/tmp/model_cli.$$); rc=$?
err=$(cat /tmp/model_cli.$$); rm -f /tmp/model_cli.$$
[ $rc = 0 ] || fail "bench train (Prescott): exit $rc: $err"
echo "$out" | grep -q '"blas_kernel":"Prescott"' || fail "user OPENBLAS_CORETYPE=Prescott not respected: $out"
echo "$out" | grep -q '"tokens_per_s":' || fail "bench train: no tokens_per_s: $out"
# The kernel class this CPU's flags allow, by ddpt's rule
# (blas_kernel_for_cpu): without OPENBLAS_CORETYPE ddpt must run that class,
# and a user's weaker Prescott must be kept with a warning. A CPU without AVX
# deserves nothing better than what OpenBLAS picks: then no warning.
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { for f in "$@"; do case $flags in *" $f "*) ;; *) return 1 ;; esac; done; }
if has avx512f avx512bw avx512vl avx512dq avx512cd; then
  class=AVX-512 want='SkylakeX|Cooperlake|SapphireRapids'
elif has avx2 fma; then
  class=AVX2 want='Haswell|Zen'
elif has avx; then
  class=AVX want='Sandybridge|Bulldozer|Piledriver|Steamroller|Excavator'
else
  class="no AVX" want=
fi
out=$(env -u OPENBLAS_CORETYPE "$ddpt" bench train $small 2>/dev/null)
kernel=$(echo "$out" | sed -n 's/.*"blas_kernel":"\([^"]*\)".*/\1/p')
echo "model_cli: $class CPU, OpenBLAS kernel without OPENBLAS_CORETYPE: ${kernel:-none}"
if [ -n "$want" ]; then
  echo "$kernel" | grep -Eqx "$want" \
    || fail "$class CPU without OPENBLAS_CORETYPE runs kernel '$kernel', not one of $want: $out"
  echo "$err" | grep -q "OPENBLAS_CORETYPE=Prescott is set: kept" \
    || fail "$class CPU: no warning that the user's weaker Prescott was kept: $err"
else
  [ -n "$kernel" ] || fail "bench train without OPENBLAS_CORETYPE reports no kernel: $out"
  echo "$err" | grep -q "kept" && fail "CPU without AVX: warned about a faster kernel: $err"
fi
# The re-executed side: verifies sgemm and says what ddpt did.
err=$(OPENBLAS_CORETYPE=Haswell DDPT_BLAS_REEXEC=Prescott "$ddpt" bench train $small 2>&1 >/dev/null)
echo "$err" | grep -q "OpenBLAS picked kernel Prescott.*OPENBLAS_CORETYPE=Haswell.*sgemm verified" \
  || fail "re-executed run does not log the selection: $err"

[ $status = 0 ] && echo "model_cli: ok"
exit $status
