#!/bin/sh
# One line-length limit (issue 16 row 14): a 50 MB single line is refused
# by `ddpt shard` and by `ddpt tokenize` alike, each with one line naming
# the file, the line and the same limit; shard leaves no corpus behind.
set -eu
ddpt=$1
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
"$lib/words_text.sh" "$dir"
"$py" -c "
import sys
with open(sys.argv[1], 'wb') as f:
    f.write(b'a short first line\n' + b'ab ' * (50 * 1024 * 1024 // 3) + b'\nlast\n')" "$dir/long.txt"
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/corpus" --shards 1 --seq-len 32 "$dir/long.txt" \
  >/dev/null 2>"$dir/shard.err" && fail "shard accepted a 50 MB line"
"$ddpt" tokenize --vocab "$dir/vocab.txt" "$dir/long.txt" >/dev/null 2>"$dir/tokenize.err" &&
  fail "tokenize accepted a 50 MB line"
for cmd in shard tokenize; do
  [ "$(wc -l <"$dir/$cmd.err")" -eq 1 ] || { cat "$dir/$cmd.err"; fail "$cmd: not one line"; }
  grep -q "long.txt' line 2 is longer than 16777216 bytes, the line limit" "$dir/$cmd.err" ||
    { cat "$dir/$cmd.err"; fail "$cmd does not name the file, the line and the limit"; }
done
[ "$(sed 's/^ddpt [a-z]*: //' "$dir/shard.err")" = "$(sed 's/^ddpt [a-z]*: //' "$dir/tokenize.err")" ] ||
  fail "shard and tokenize state the limit differently: $(cat "$dir/shard.err" "$dir/tokenize.err")"
[ -e "$dir/corpus" ] && fail "shard left $dir/corpus behind"
echo "corpus_line_limit: shard and tokenize refuse a 50 MB line with the same limit"
