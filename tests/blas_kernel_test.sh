#!/bin/sh
# Runs one test of a CUnit test executable under one OpenBLAS kernel:
#   blas_kernel_test.sh KERNEL EXECUTABLE TEST
# OpenBLAS reads OPENBLAS_CORETYPE when it loads, so each kernel needs a
# process of its own. Exits 77 (ctest: skipped), saying why, when this CPU
# lacks what the kernel needs (OpenBLAS would run it anyway and die on an
# illegal instruction); fails when OpenBLAS runs another kernel than asked,
# as the test prints "(OpenBLAS kernel NAME)".
set -eu
kernel=$1 exe=$2 test=$3
case $kernel in
  Prescott) need=pni ;;
  Sandybridge) need=avx ;;
  Haswell | Zen) need="avx2 fma" ;;
  SkylakeX) need="avx512f avx512bw avx512vl avx512dq avx512cd" ;;
  Cooperlake) need="avx512f avx512bw avx512vl avx512dq avx512cd avx512_bf16" ;;
  *) echo "blas_kernel_test: unknown kernel $kernel: add what it needs here"; exit 1 ;;
esac
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
for f in $need; do
  case $flags in
    *" $f "*) ;;
    *) echo "skipped: this CPU lacks $f, which OpenBLAS's $kernel kernel needs"; exit 77 ;;
  esac
done
rc=0
out=$(OPENBLAS_CORETYPE=$kernel DDPT_TEST=$test "$exe" 2>&1) || rc=$?
echo "$out"
if ! echo "$out" | grep -qi "(OpenBLAS kernel $kernel)"; then
  echo "blas_kernel_test: OpenBLAS did not run kernel $kernel (OPENBLAS_CORETYPE=$kernel)"
  exit 1
fi
exit $rc
