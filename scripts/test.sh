#!/bin/sh
# The one test command (README; .ci/run calls it): installs dependencies,
# builds, runs every ctest, then runs the unit tests again in an
# AddressSanitizer + UndefinedBehaviorSanitizer build (with the comm/ tests
# under mpirun), then runs every libFuzzer target for a bounded time. Exits
# non-zero on any failure, sanitizer report or fuzzer finding.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

scripts/install-deps.sh

# Warnings are errors in CI; locally they are shown but do not stop you.
werror=OFF
[ "${CI:-}" = true ] && werror=ON

echo "== build (build/)"
cmake -S . -B build -DDDPT_WERROR=$werror >/dev/null
cmake --build build -j"$jobs"
echo "== ctest (build/)"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== sanitizers: ASan + UBSan unit tests and comm/ under mpirun (build-asan/)"
cmake -S . -B build-asan -DDDPT_SANITIZE=ON -DDDPT_WERROR=$werror >/dev/null
cmake --build build-asan -j"$jobs"
# Full stacks (fast_unwind_on_malloc=0) let the suppressions recognise Open
# MPI's own allocations; anything allocated by ddpt is still reported.
# use_tls=0: Open MPI unloads plugins at MPI_Finalize and leaves a stale
# dynamic-TLS block behind, which crashes LeakSanitizer's scan of TLS roots.
export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0:use_tls=0
# Label sanitize: the comm/ tests under mpirun (tests/comm_mpi.cmake), so the
# collectives and the gradient reducer run under the sanitizers too, and
# the end-to-end MPI training tests train_mpi_equivalence and
# train_failures (about 2 minutes more here). The chaos test is left out:
# Open MPI's allocations in ranks that die of a signal defeat the leak
# suppressions, and its kills are timing, not memory, checks.
(cd build-asan && ctest -L "unit|sanitize" --output-on-failure -j"$jobs")

echo "== fuzz: every tests/fuzz/fuzz_*.c under libFuzzer + ASan/UBSan (build-fuzz/)"
# Each target starts from its own corpus plus, where they exist, the seeds
# in tests/fuzz/seeds/<name>/ and the dictionary tests/fuzz/seeds/<name>.dict.
# The tokenizer gets the longest run: any text at all reaches it.
# No MPI here, so the full stacks the suppressions need for Open MPI's
# plugins (above) are not needed: fast unwinding at each malloc makes
# fuzz_ckpt, whose libhdf5 allocates on every call, 2.5 times as fast. Its
# leaks are still matched to libhdf5, the first frame above malloc.
# allocator_may_return_null: an absurd request (a damaged HDF5 superblock
# asks for 84 TB) fails as malloc fails in production, which libhdf5 and
# ddpt handle, instead of aborting; libFuzzer still reports any allocation
# over 2 GB that succeeds (-malloc_limit_mb, its default).
export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=1:allocator_may_return_null=1"
CC=clang cmake -S . -B build-fuzz -DDDPT_FUZZ=ON -DDDPT_WERROR=$werror >/dev/null
for src in tests/fuzz/fuzz_*.c; do
  target=$(basename "$src" .c)
  name=${target#fuzz_}
  seconds=20 max_len=4096
  [ "$name" = tokenizer ] && seconds=30
  # A checkpoint is a whole HDF5 file: its seeds are 10-27 KB.
  [ "$name" = ckpt ] && max_len=65536
  cmake --build build-fuzz -j"$jobs" --target "$target"
  mkdir -p "build-fuzz/corpus-$name"
  set -- "build-fuzz/corpus-$name"
  [ -d "tests/fuzz/seeds/$name" ] && set -- "$@" "tests/fuzz/seeds/$name"
  [ -f "tests/fuzz/seeds/$name.dict" ] && set -- "-dict=tests/fuzz/seeds/$name.dict" "$@"
  echo "-- $target, $seconds s"
  # -timeout: an input that runs 60 s is a hang, reported at once.
  "build-fuzz/$target" -max_total_time=$seconds -max_len=$max_len -timeout=60 -print_final_stats=1 "$@"
done

echo "== all tests passed"
