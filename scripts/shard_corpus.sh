#!/bin/sh
# From a folder of raw text to a ddpt corpus in one line: trains a WordPiece
# vocab with `ddpt vocab` unless one is given, then runs `ddpt shard` with
# defaults that suit BERT pretraining. Extra options go to `ddpt shard`.
set -eu

usage() {
  cat <<'USAGE'
usage: scripts/shard_corpus.sh [options] TEXT... OUT_DIR
  TEXT               files or folders of text (folders are read recursively)
  OUT_DIR            the corpus to create (must not exist or be empty)
  --vocab FILE       use this vocab.txt instead of training one
  --vocab-size N     size of the trained vocab (default 30522, as BERT)
  --seq-len L        tokens per sequence (default 128)
  --shards N         training shards (default 16: up to 16 ranks)
  --format F         lines, docs or fortune (default lines)
  --valid-fraction F share of documents held out for validation (default 0.01)
  --cased            keep case and accents
  -h, --help         this text
Any other option (--nsp, --seed S, --threads T, --overwrite) goes to ddpt shard.
The corpus holds its vocab as OUT_DIR/vocab.txt. The ddpt executable is taken
from $DDPT, else from PATH, else from build/ next to this script.
USAGE
}

die() {
  echo "shard_corpus: $*" >&2
  exit 1
}

here=$(cd "$(dirname "$0")/.." && pwd)
ddpt=${DDPT:-}
[ -n "$ddpt" ] || ddpt=$(command -v ddpt || true)
[ -n "$ddpt" ] || ddpt="$here/build/ddpt"
[ -x "$ddpt" ] || die "no ddpt executable (set DDPT, or build it: cmake -S . -B build && cmake --build build)"

vocab="" vocab_size=30522 seq_len=128 shards=16 format=lines valid=0.01 cased=""
extra="" inputs=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --vocab) vocab=${2:?--vocab needs a file}; shift 2 ;;
    --vocab-size) vocab_size=${2:?--vocab-size needs a number}; shift 2 ;;
    --seq-len) seq_len=${2:?--seq-len needs a number}; shift 2 ;;
    --shards) shards=${2:?--shards needs a number}; shift 2 ;;
    --format) format=${2:?--format needs lines, docs or fortune}; shift 2 ;;
    --valid-fraction) valid=${2:?--valid-fraction needs a number}; shift 2 ;;
    --cased) cased=--cased; shift ;;
    --seed|--threads) extra="$extra $1 ${2:?$1 needs a value}"; shift 2 ;;
    --nsp|--overwrite) extra="$extra $1"; shift ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) inputs="$inputs
$1"; shift ;;
  esac
done

# The last positional argument is the output; the others are the inputs.
out=$(printf '%s\n' "$inputs" | sed '/^$/d' | tail -n 1)
inputs=$(printf '%s\n' "$inputs" | sed '/^$/d' | sed '$d')
[ -n "$out" ] && [ -n "$inputs" ] || { usage >&2; die "need at least one TEXT and an OUT_DIR"; }

IFS='
'
for input in $inputs; do
  [ -e "$input" ] || die "input $input does not exist; check the path"
done

tmp=""
trap '[ -z "$tmp" ] || rm -f "$tmp"' EXIT
if [ -z "$vocab" ]; then
  tmp=$(mktemp "${TMPDIR:-/tmp}/ddpt-vocab.XXXXXX")
  echo "shard_corpus: training a vocab of up to $vocab_size tokens"
  # shellcheck disable=SC2086
  "$ddpt" vocab --size "$vocab_size" $cased --out "$tmp" $inputs
  vocab=$tmp
fi
echo "shard_corpus: sharding into $out"
# shellcheck disable=SC2086
"$ddpt" shard --vocab "$vocab" --out "$out" --shards "$shards" --seq-len "$seq_len" \
  --format "$format" --valid-fraction "$valid" $cased $extra $inputs
echo "shard_corpus: done; check it with: $ddpt corpus verify $out"
