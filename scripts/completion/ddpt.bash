# bash completion for ddpt: commands, subcommands (corpus info, bench train,
# ...), their flags and the values of flags that take one of a few words.
# Everything is read from `ddpt help` when TAB is pressed, not written here,
# so it is always the ddpt being completed (./build/ddpt or the one on PATH)
# and cannot drift from its help; tests/cli_help.sh checks that help against
# the parsers. Installed as share/bash-completion/completions/ddpt.

# The commands `ddpt help` lists.
_ddpt_commands() {
  "$1" help 2>/dev/null | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'
}

# The synopsis of `ddpt help CMD`: its "usage:" line and the indented lines
# below it, up to the first line of prose.
_ddpt_synopsis() {
  "$1" help "$2" 2>/dev/null | awk 'NR == 1 { next } /^usage:/ { on = 1 } on && !/^(usage:| )/ { exit } on'
}

# One line "SUB FLAG VALUE" per flag in the synopsis of CMD. SUB is the
# subcommand of the form the flag is in ("-" for none); VALUE is what
# follows the flag: a metavariable (FILE, N), words separated by '|' (a flag
# in two forms offers both forms' words), or "-" when it takes no value.
_ddpt_help_flags() {
  _ddpt_synopsis "$1" "$2" | awk -v cmd="$2" '
    {
      n = split($0, w, /[ \t]+/)
      for (i = 1; i <= n; i++) {
        t = w[i]
        sub(/^\[+/, "", t)
        if (t == "ddpt" && w[i + 1] == cmd) {
          sub_ = w[i + 2] ~ /^[a-z][a-z-]*$/ ? w[i + 2] : "-"
        } else if (t ~ /^--[a-z]/) {
          # "[--nsp]" takes no value, "[--seed S]" and "--out DIR" do.
          v = t ~ /\]/ ? "-" : w[i + 1]
          sub(/[].]+$/, "", t)
          sub(/[].]+$/, "", v)
          if (v !~ /^[A-Za-z0-9]/) v = "-"
          key = sub_ " " t
          if (!(key in value)) { order[++nkeys] = key; value[key] = v }
          else if (v ~ /\|/ && value[key] ~ /\|/ && value[key] != v) value[key] = value[key] "|" v
        }
      }
    }
    END { for (k = 1; k <= nkeys; k++) print order[k], value[order[k]] }'
}

# The subcommands of CMD (info verify sample for corpus), one per line.
_ddpt_subcommands() {
  _ddpt_synopsis "$1" "$2" | awk -v cmd="$2" '
    {
      n = split($0, w, /[ \t]+/)
      for (i = 1; i < n - 1; i++)
        if (w[i] == "ddpt" && w[i + 1] == cmd && w[i + 2] ~ /^[a-z][a-z-]*$/ && !seen[w[i + 2]]++)
          print w[i + 2]
    }'
}

_ddpt() {
  local ddpt=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=
  [ "$COMP_CWORD" -gt 0 ] && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  if [ "$COMP_CWORD" -eq 1 ]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_ddpt_commands "$ddpt") --help --version" -- "$cur")
    return
  fi
  local cmd=${COMP_WORDS[1]} subs sub=-
  if [ "$cmd" = help ]; then
    [ "$COMP_CWORD" -eq 2 ] && mapfile -t COMPREPLY < <(compgen -W "$(_ddpt_commands "$ddpt")" -- "$cur")
    return
  fi
  subs=$(_ddpt_subcommands "$ddpt" "$cmd")
  if [ -n "$subs" ]; then
    if [ "$COMP_CWORD" -eq 2 ]; then
      mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
      return
    fi
    sub=${COMP_WORDS[2]}
  fi
  local flags value
  flags=$(_ddpt_help_flags "$ddpt" "$cmd" | awk -v s="$sub" '$1 == s { print $2, $3 }')
  value=$(printf '%s\n' "$flags" | awk -v f="$prev" '$1 == f { print $2; exit }')
  case "$value" in
    "" | -) ;;
    *"|"*)
      mapfile -t COMPREPLY < <(compgen -W "${value//|/ }" -- "$cur")
      return ;;
    *DIR*)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return ;;
    ? | *=*) return ;; # a number (N, K, T) or KEY=VALUE: nothing to offer
    *)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return ;;
  esac
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(printf '%s\n' "$flags" | awk '{ print $1 }')" -- "$cur")
    return
  fi
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

complete -F _ddpt ddpt
