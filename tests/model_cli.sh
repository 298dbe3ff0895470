#!/bin/sh
# The model commands end to end: `ddpt model info` prints BERT-base's
# published parameter count, an impossible batch fails at start with the
# figures, `ddpt bench train` prints its JSON line, and the OpenBLAS kernel
# choice respects a user's OPENBLAS_CORETYPE and upgrades otherwise.
set -u
ddpt=$1
status=0
fail() { echo "model_cli: $1"; status=1; }
small="--preset bert-tiny --set num_hidden_layers=1 --batch 2 --seq-len 16 --steps 1 --warmup 0 --threads 1"

out=$("$ddpt" model info --preset bert-base --batch 8 --seq-len 128) || fail "model info exited $?"
echo "$out" | grep -q "^parameters:  110106428$" || fail "model info: bert-base count: $out"
echo "$out" | grep -q "activations" || fail "model info: no activation memory"

out=$("$ddpt" bench train --preset bert-base --batch 100000 --seq-len 512 --steps 1 2>&1); rc=$?
[ $rc = 1 ] || fail "impossible batch: exit $rc, want 1"
echo "$out" | grep -q "GiB" || fail "impossible batch: message lacks the figure: $out"

out=$(OPENBLAS_CORETYPE=Prescott "$ddpt" bench train $small 2>/tmp/model_cli.$$); rc=$?
err=$(cat /tmp/model_cli.$$); rm -f /tmp/model_cli.$$
[ $rc = 0 ] || fail "bench train (Prescott): exit $rc: $err"
echo "$out" | grep -q '"blas_kernel":"Prescott"' || fail "user OPENBLAS_CORETYPE=Prescott not respected: $out"
echo "$out" | grep -q '"tokens_per_s":' || fail "bench train: no tokens_per_s: $out"
if grep -q avx512bw /proc/cpuinfo && grep -q avx512vl /proc/cpuinfo && grep -q avx512dq /proc/cpuinfo; then
  echo "$err" | grep -q "kept" || fail "no warning that the user's weaker kernel was kept: $err"
  out=$(env -u OPENBLAS_CORETYPE "$ddpt" bench train $small 2>/dev/null)
  echo "$out" | grep -Eq '"blas_kernel":"(SkylakeX|Cooperlake|SapphireRapids)"' \
    || fail "AVX-512 CPU without OPENBLAS_CORETYPE does not run an AVX-512 kernel: $out"
fi
# The re-executed side: verifies sgemm and says what ddpt did.
err=$(OPENBLAS_CORETYPE=Haswell DDPT_BLAS_REEXEC=Prescott "$ddpt" bench train $small 2>&1 >/dev/null)
echo "$err" | grep -q "OpenBLAS picked kernel Prescott.*OPENBLAS_CORETYPE=Haswell.*sgemm verified" \
  || fail "re-executed run does not log the selection: $err"

[ $status = 0 ] && echo "model_cli: ok"
exit $status
