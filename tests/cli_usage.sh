#!/bin/sh
# The ddpt executable's contract for usage errors: unknown commands and
# options exit 2 with one clear line and the usage; help and version exit 0.
set -u
ddpt=$1
status=0
fail() { echo "cli_usage: $1"; status=1; }
expect() { # expected-exit description command...
  want=$1; what=$2; shift 2
  out=$("$@" 2>&1); got=$?
  [ "$got" = "$want" ] || fail "$what: exit $got, want $want; output: $out"
  printf '%s' "$out"
}

out=$(expect 2 "no command" "$ddpt"); echo "$out" | grep -q "^usage: ddpt <command>" || fail "no command: usage missing"
out=$(expect 2 "unknown command" "$ddpt" frobnicate)
echo "$out" | head -1 | grep -q "^ddpt: unknown command 'frobnicate'$" || fail "unknown command: first line is '$(echo "$out" | head -1)'"
echo "$out" | grep -q "^usage: ddpt" || fail "unknown command: usage missing"
out=$(expect 2 "unknown option" "$ddpt" version --bogus)
echo "$out" | head -1 | grep -q "^ddpt version: unknown option or missing value: --bogus$" || fail "unknown option: first line is '$(echo "$out" | head -1)'"
echo "$out" | grep -q "^usage: ddpt version" || fail "unknown option: usage missing"
out=$(expect 2 "help for unknown command" "$ddpt" help frobnicate)
out=$(expect 0 "help" "$ddpt" help); echo "$out" | grep -q "version" || fail "help does not list version"
out=$(expect 0 "help version" "$ddpt" help version); echo "$out" | grep -q "^usage: ddpt version" || fail "help version: no usage"
out=$(expect 0 "version" "$ddpt" version)
for lib in "Open MPI" "HDF5" "OpenBLAS" "LevelDB" "utf8proc"; do
  echo "$out" | grep -q "$lib" || fail "version does not name $lib"
done
[ $status = 0 ] && echo "cli_usage: ok"
exit $status
