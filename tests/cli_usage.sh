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
# --help anywhere after a command is that command's help; `ddpt --help` is `ddpt help`.
[ "$("$ddpt" --help)" = "$("$ddpt" help)" ] || fail "ddpt --help differs from ddpt help"
out=$(expect 0 "corpus sample --help" "$ddpt" corpus sample --batch 2 --help)
[ "$out" = "$("$ddpt" help corpus)" ] || fail "ddpt corpus sample --batch 2 --help is not ddpt help corpus"
# The manual page: roff, one subsection per command of `ddpt help`.
out=$(expect 0 "help --man" "$ddpt" help --man)
echo "$out" | head -1 | grep -q '^\.TH DDPT 1 ' || fail "help --man: first line is '$(echo "$out" | head -1)'"
for cmd in $("$ddpt" help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'); do
  echo "$out" | grep -qx ".SS \"ddpt $(echo "$cmd" | sed 's/-/\\\\-/g')\"" || fail "help --man has no section for $cmd"
done
out=$(expect 2 "help --man COMMAND" "$ddpt" help --man train)
echo "$out" | head -1 | grep -q "^ddpt help: --man takes no COMMAND$" || fail "help --man train: first line is '$(echo "$out" | head -1)'"
out=$(expect 0 "version" "$ddpt" version)
for lib in "Open MPI" "HDF5" "OpenBLAS" "LevelDB" "utf8proc"; do
  echo "$out" | grep -q "$lib" || fail "version does not name $lib"
done
[ $status = 0 ] && echo "cli_usage: ok"
exit $status
