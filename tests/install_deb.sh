#!/bin/sh
# `cpack -G DEB` builds ddpt_<version>_<arch>.deb that declares its Debian
# dependencies and installs with apt-get from the file alone (every
# dependency is already on this machine: nothing is fetched); then
# ddpt runs from PATH, man finds ddpt(1), bash completion completes, and
# `apt-get purge` leaves the machine as it was.
# usage: install_deb.sh BUILD_DIR   (as root, on a machine without a ddpt package)
set -eu
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
need_root "to install a package"
build=$(realpath "$1")
dpkg-query -W -f='${Status}' ddpt 2>/dev/null | grep -q 'installed' &&
  fail "a ddpt package is installed on this machine (dpkg -s ddpt); this test would replace and remove it: apt-get purge ddpt first"
# apt reads the .deb as its unprivileged _apt user.
chmod 755 "$dir"
installed=0
cleanup() {
  if [ $installed = 1 ]; then
    apt-get purge -y -o DPkg::Lock::Timeout=300 ddpt >"$dir/purge.log" 2>&1 ||
      echo "install_deb: apt-get purge ddpt failed: $(tail -3 "$dir/purge.log")"
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

cpack -G DEB --config "$build/CPackConfig.cmake" -B "$dir" >"$dir/cpack.log" 2>&1 ||
  fail "cpack -G DEB failed: $(tail -5 "$dir/cpack.log")"
deb=$(ls "$dir"/ddpt_*_"$(dpkg --print-architecture)".deb 2>/dev/null || true)
[ -n "$deb" ] || fail "cpack wrote no ddpt_<version>_$(dpkg --print-architecture).deb: $(ls "$dir")"
chmod 644 "$deb"

# The dependencies: mpirun's package, and the package of each library ddpt
# links directly (NEEDED), as dpkg-shlibdeps must have found them.
depends=$(dpkg-deb -f "$deb" Depends)
has_dep() { echo "$depends" | tr ',|' '\n\n' | grep -q "^ *$1\( (.*)\)\? *$"; }
has_dep openmpi-bin || fail "the package does not depend on openmpi-bin (mpirun): Depends: $depends"
for soname in $(readelf -d "$build/ddpt" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  lib=$(ldd "$build/ddpt" | awk -v s="$soname" '$1 == s { print $3 }')
  # dpkg knows a file by the path its package ships: the one ldd shows, the
  # link's target, or that without /usr (merged /usr).
  real=$(realpath "$lib")
  owner=$(dpkg -S "$lib" "$real" "${real#/usr}" 2>/dev/null | head -1 | cut -d: -f1)
  [ -n "$owner" ] || fail "no Debian package holds $soname ($lib)"
  # OpenBLAS's variants (libopenblas0-pthread, ...) come through libopenblas0.
  case "$owner" in libopenblas0-*) owner=libopenblas0 ;; esac
  has_dep "$owner" || fail "ddpt links $soname from $owner, which the package does not depend on: Depends: $depends"
done

# Every dependency is on this machine: apt's plan installs ddpt alone and
# fetches nothing.
plan=$(apt-get install -s --no-install-recommends "$deb" 2>&1 | grep "^Inst " || true)
[ "$plan" = "Inst ddpt ($(dpkg-deb -f "$deb" Version) local-deb [$(dpkg --print-architecture)])" ] ||
  fail "apt-get would install more than ddpt (a dependency is missing; scripts/install-deps.sh installs them): $plan"
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "$deb" >"$dir/install.log" 2>&1 ||
  fail "apt-get install $(basename "$deb") failed: $(tail -5 "$dir/install.log")"
installed=1

[ "$(command -v ddpt)" = /usr/bin/ddpt ] || fail "ddpt on PATH is '$(command -v ddpt)', not /usr/bin/ddpt"
ddpt version >"$dir/version" 2>&1 || fail "ddpt version failed: $(cat "$dir/version")"
grep -q '^ddpt [0-9]' "$dir/version" || fail "ddpt version printed: $(cat "$dir/version")"
ddpt help train | grep -q '^Examples:' || fail "ddpt help train has no examples"
[ "$(man -w ddpt 2>&1)" = /usr/share/man/man1/ddpt.1.gz ] || fail "man -w ddpt says: $(man -w ddpt 2>&1)"
man ddpt 2>/dev/null | grep -q 'ddpt fill-mask' || fail "man ddpt does not show the commands"
for f in /usr/share/ddpt/configs/bert-tiny.ini /usr/share/ddpt/scripts/shard_corpus.sh /usr/share/doc/ddpt/README.md; do
  dpkg -L ddpt | grep -qx "$f" || fail "the package does not hold $f"
done
got=$(bash -c '. /usr/share/bash-completion/completions/ddpt && complete -p ddpt >/dev/null &&
  COMP_WORDS=(ddpt tr) COMP_CWORD=1 && _ddpt && echo "${COMPREPLY[*]}"' 2>&1)
[ "$got" = train ] || fail "bash completion of 'ddpt tr' gave '$got', want 'train'"

apt-get purge -y -o DPkg::Lock::Timeout=300 ddpt >"$dir/purge.log" 2>&1 || fail "apt-get purge ddpt failed: $(tail -3 "$dir/purge.log")"
installed=0
dpkg-query -W -f='${Status}' ddpt 2>/dev/null | grep -q 'installed' && fail "ddpt is still installed after apt-get purge"
for f in /usr/bin/ddpt /usr/share/ddpt /usr/share/man/man1/ddpt.1.gz /usr/share/bash-completion/completions/ddpt; do
  [ ! -e "$f" ] || fail "$f is left after apt-get purge ddpt"
done
echo "install_deb: ok ($(basename "$deb"), Depends: $depends)"
