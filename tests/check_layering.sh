#!/bin/sh
# Checks the dependency direction of docs/design.md: MPI, HDF5 and LevelDB
# (and Snappy) headers appear only in comm/, storage/ and corpus/, and
# modules include only the modules below them (cli -> trainer -> {comm, storage, corpus} -> util).
# For MPI and HDF5 the build enforces the first rule as well (test
# layering_build, tests/layering.cmake); LevelDB's and utf8proc's headers sit
# in /usr/include, where only this check sees them.
set -u
root=${1:-.}
cd "$root" || exit 2
status=0
fail() { echo "layering: $1"; status=1; }

check_header() { # header-regex allowed-dir
  hits=$(grep -rlE "#include *<($1)" cli trainer comm storage corpus util 2>/dev/null | grep -v "^$2/" || true)
  [ -z "$hits" ] || fail "<$1> included outside $2/: $hits"
}
check_header 'mpi\.h' comm
check_header 'hdf5[^>]*\.h|H5[^>]*\.h' storage
check_header 'leveldb/' corpus
check_header 'utf8proc\.h' corpus
check_header 'snappy' corpus
# oneDNN only behind trainer/'s GEMM seam, in one file.
hits=$(grep -rlE '#include *<(oneapi/dnnl/|dnnl)' cli trainer comm storage corpus util 2>/dev/null |
  grep -vx 'trainer/gemm_onednn.c' || true)
[ -z "$hits" ] || fail "oneDNN headers included outside trainer/gemm_onednn.c: $hits"

check_deps() { # module allowed-modules...
  module=$1; shift
  for f in $(find "$module" -name '*.[ch]'); do
    for inc in $(sed -n 's/^#include "\([a-z]*\)\/.*/\1/p' "$f" | sort -u); do
      ok=0
      for a in "$module" "$@"; do [ "$inc" = "$a" ] && ok=1; done
      [ $ok = 1 ] || fail "$f includes $inc/, which $module/ must not depend on"
    done
  done
}
check_deps util
check_deps corpus util
check_deps comm util
check_deps storage util
check_deps trainer comm storage corpus util
check_deps cli trainer comm storage corpus util

[ $status = 0 ] && echo "layering: ok (cli -> trainer -> {comm, storage, corpus} -> util)"
exit $status
