#!/bin/bash
# `ddpt help` is complete and bash completion offers what it says:
#  1. every `ddpt help CMD` (and `ddpt --help`) ends with an Example(s)
#     section whose commands use only flags of that command's synopsis;
#  2. every flag a synopsis lists is accepted by the command's parser, with a
#     value exactly when the synopsis shows one;
#  3. every long option in the parser's table (struct option entries of the
#     cli/ file defining cmd_<name>) that the parser accepts is listed;
#  4. completion (scripts/completion/ddpt.bash, which reads the same help)
#     completes commands, subcommands, flags and flag values.
# Parsers are probed from outside: `ddpt CMD [SUB] FLAG [VALUE] --zz-probe`
# accepted FLAG when the error names --zz-probe as the unknown option.
# usage: cli_help.sh DDPT SOURCE_DIR
set -u
ddpt=$(realpath "$1")
src=$(realpath "$2")
status=0
fail() { echo "cli_help: $*"; status=1; }
# shellcheck source=../scripts/completion/ddpt.bash
source "$src/scripts/completion/ddpt.bash"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
export OPENBLAS_NUM_THREADS=1

commands=$(_ddpt_commands "$ddpt")
[ "$(echo "$commands" | wc -l)" -ge 15 ] || fail "ddpt help lists only: $commands"

# ---------------------------------------------------------------- 1. examples
# The last section of a help text: "Example:" or "Examples:", then indented
# command lines, nothing after them.
check_examples() { # what text flags ("-": do not check flags)
  local what=$1 text=$2 flags=$3 section line f
  section=$(printf '%s\n' "$text" | awk '/^Examples?:$/ { s = ""; on = 1; next } on { s = s $0 "\n" } END { printf "%s", s }')
  [ -n "$section" ] || { fail "$what: no Example(s) section"; return; }
  printf '%s\n' "$text" | tail -1 | grep -q '^  ' || fail "$what: Examples is not the last section"
  printf '%s' "$section" | grep -q '^  \(mpirun .*\)\?ddpt ' || fail "$what: Examples holds no ddpt command"
  [ "$flags" = - ] && return
  while IFS= read -r line; do
    [[ $line == *"ddpt $what "* ]] || continue
    # The flags after "ddpt CMD", not mpirun's before it.
    for f in $(printf '%s\n' "${line#*ddpt $what }" | grep -o -- '\(^\| \)--[a-z][a-z0-9-]*' | sed 's/^ //'); do
      printf '%s\n' "$flags" | grep -qx -- "$f" || fail "$what: example uses $f, which the synopsis does not list: $line"
    done
  done <<<"$section"
}
check_examples "--help" "$("$ddpt" --help)" -
for cmd in $commands; do
  check_examples "$cmd" "$("$ddpt" help "$cmd")" "$(_ddpt_help_flags "$ddpt" "$cmd" | awk '{ print $2 }')"
done

# ------------------------------------------------------------- 2. and 3. flags
# The first line ddpt prints for `ddpt CMD [SUB] ARGS... --zz-probe`.
first_error() { # cmd sub args...
  local cmd=$1 sub=$2
  shift 2
  [ "$sub" = - ] && set -- "$cmd" "$@" || set -- "$cmd" "$sub" "$@"
  timeout 60 "$ddpt" "$@" --zz-probe </dev/null 2>&1 >/dev/null | head -1
}
reached() { [[ $1 == *"unknown option or missing value: --zz-probe" ]]; }

# 2: each listed flag is accepted; "FLAG --zz-probe" reaches the probe only
# when FLAG takes no value (else --zz-probe is taken as its value).
for cmd in $commands; do
  while read -r sub flag value; do
    case "$value" in -) v=() ;; *"|"*) v=("${value%%|*}") ;; *) v=(8) ;; esac
    err=$(first_error "$cmd" "$sub" "$flag" "${v[@]}")
    # A value the parser rejects by name ("--arch: '8' is not ...") is accepted too.
    reached "$err" || [[ $err == *"$flag"* && $err != *"unknown option"* ]] ||
      fail "ddpt help $cmd lists $flag ($sub) but the parser says: $err"
    err=$(first_error "$cmd" "$sub" "$flag")
    if [ "$value" = - ]; then
      reached "$err" || fail "ddpt help $cmd shows $flag without a value, but it takes one: $err"
    else
      ! reached "$err" || fail "ddpt help $cmd shows $flag $value, but it takes no value"
    fi
  done < <(_ddpt_help_flags "$ddpt" "$cmd")
done

# 3: the long options of the file that defines cmd_<name>, tried on every
# form of the command; one the parser takes must be in that form's synopsis.
# A prefix of a listed flag is skipped: getopt_long takes it as that flag.
for cmd in $commands; do
  file=$(grep -l "^int cmd_${cmd//-/_}(.*) {" "$src"/cli/*.c)
  [ -n "$file" ] || { fail "$cmd: no cli/*.c defines cmd_${cmd//-/_}"; continue; }
  candidates=$(grep -o '{"[a-z][a-z0-9-]*", *\(no\|required\|optional\)_argument' "$file" | sed 's/{"\([^"]*\)".*/--\1/' | sort -u)
  help=$(_ddpt_help_flags "$ddpt" "$cmd")
  subs=$(_ddpt_subcommands "$ddpt" "$cmd")
  for sub in ${subs:--}; do
    listed=$(printf '%s\n' "$help" | awk -v s="$sub" '$1 == s { print $2 }')
    for flag in $candidates; do
      [ "$sub" = - ] && form=$cmd || form="$cmd $sub"
      printf '%s\n' "$listed" | grep -q -- "^$flag" && continue
      # "FLAG --zz-probe" reaches the probe for a flag without a value, and
      # one with a value takes --zz-probe as it (an error may quote it); "FLAG
      # 8 --zz-probe" reaches it for one with a value.
      e1=$(first_error "$cmd" "$sub" "$flag")
      # Refused outright: FLAG comes first in both probes.
      [[ $e1 == *"unknown option or missing value: $flag" ]] && continue
      e2=$(first_error "$cmd" "$sub" "$flag" 8)
      if [[ $e1 == *--zz-probe* || $e2 == *--zz-probe* ]]; then
        fail "ddpt $form accepts $flag, but ddpt help $cmd does not list it in that form"
      fi
    done
  done
done

# ----------------------------------------------------------------- 4. completion
complete_line() { # words... ("" last for a new word): prints the candidates
  COMP_WORDS=("$ddpt" "$@")
  COMP_CWORD=$#
  _ddpt
  [ ${#COMPREPLY[@]} = 0 ] || printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
complete -p ddpt >/dev/null 2>&1 || fail "completion: sourcing it does not register ddpt"
expect_completion() { # want words...
  local want=$1 got
  shift
  got=$(complete_line "$@")
  [ "$got" = "$want" ] || fail "completion of 'ddpt $*': got '$got', want '$want'"
}
expect_completion "train " tr
expect_completion "fill-mask finetune " f
expect_completion "info sample verify " corpus ""
expect_completion "diff info upgrade verify " ckpt ""
expect_completion "info " model ""
expect_completion "train " bench ""
expect_completion "--whole-word --world " corpus sample --w
expect_completion "--vocab " corpus verify --
expect_completion "conll docs fortune jsonl lines tsv " shard --format ""
expect_completion "f16 f32 " export --dtype f
expect_completion "--with-optimizer " import --w
expect_completion "--resume --run-dir " train --r
expect_completion "finetune " help fin
mkdir -p cdir && : >cfile
expect_completion "cdir " train --run-dir c
expect_completion "cdir cfile " train c
expect_completion "" train --threads ""
[ $status = 0 ] && echo "cli_help: ok"
exit $status
