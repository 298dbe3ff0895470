#!/bin/sh
# Installs the Debian 12 packages ddpt needs to build and test: nothing else.
# Idempotent and quiet when everything is present. As a non-root user it
# prints the apt-get line to run instead of running it.
set -eu

# Build: compiler, CMake, and the libraries ddpt links (libdnnl-dev: oneDNN,
# the bf16 products of precision = bf16; OpenBLAS stays the fp32 path).
BUILD="build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin libhdf5-dev libopenblas-dev
  libleveldb-dev libsnappy-dev libcunit1-dev libutf8proc-dev libcjson-dev
  libinih-dev libssl-dev libdnnl-dev"
# Tests: HDF5 tools (h5diff), PyTorch parity and file-format checks in
# Debian's python3, metrics plots (matplotlib), clang's libFuzzer and OpenMP
# (the fuzz build configures the whole project with clang), real messy
# text (fortunes), and jieba's word segmentation of the Chinese fortunes
# (the tags tests/finetune_e2e.sh fine-tunes a segmenter on); GNU time for
# the benchmarks' peak-RSS figures; man-db (man -w finds ddpt(1)), and
# dpkg-dev and file, with which `cpack -G DEB` finds the packages of the
# libraries ddpt links (dpkg-shlibdeps) for the .deb tests/install_deb.sh
# installs; valgrind for the memcheck run of one training step
# (tests/train_valgrind.sh); ping and iperf3 for the pretend hosts' link
# checks (bench/hub_links.sh, bench/allreduce_netns.py).
TEST="hdf5-tools python3 python3-torch python3-h5py python3-numpy python3-plyvel
  python3-matplotlib clang libclang-rt-14-dev libomp-dev fortunes fortunes-zh python3-jieba time
  man-db dpkg-dev file valgrind iputils-ping iperf3"

missing=""
for pkg in $BUILD $TEST; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $pkg" ;;
  esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "ddpt needs these Debian packages:$missing"
  echo "run as root:  apt-get update && apt-get install -y --no-install-recommends$missing"
  exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
