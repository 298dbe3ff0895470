#!/bin/sh
# Tokenizer throughput on English and Chinese text (Debian's fortunes and
# fortunes-zh), single thread: ddpt's tok_encode (bench_tokenize) side by
# side with the Python reference of google-research/bert's FullTokenizer.
# usage: bench/tokenize.sh [BUILD_DIR] [SECONDS]
set -eu
build=${1:-build}
seconds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
fortunes=/usr/share/games/fortunes
work=$(mktemp -d "${TMPDIR:-/tmp}/ddpt-bench-tokenize-XXXXXX")
trap 'rm -rf "$work"' EXIT

cat "$fortunes"/fortunes "$fortunes"/computers "$fortunes"/science "$fortunes"/linux \
    "$fortunes"/literature "$fortunes"/people "$fortunes"/wisdom > "$work/en.txt"
cat "$fortunes"/chinese "$fortunes"/tang300 "$fortunes"/song100 > "$work/zh.txt"
"$build/ddpt" vocab --size 30000 --out "$work/vocab.txt" "$work/en.txt" "$work/zh.txt" > /dev/null

python_mbps() { # file
  /usr/bin/python3 - "$root/tests/parity/bert_tokenization_ref.py" "$work/vocab.txt" "$1" <<'PY'
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("ref", sys.argv[1])
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
vocab = ref.load_vocab(sys.argv[2])
data = open(sys.argv[3], "rb").read()
start = time.perf_counter()
for line in data.split(b"\n"):
    for word in ref.basic_tokenize(line.decode("utf-8", "ignore"), True):
        ref.wordpiece(word, vocab)
print("%.2f" % (len(data) / 1e6 / (time.perf_counter() - start)))
PY
}

echo "tokenize throughput, one thread, uncased, vocab of $(wc -l < "$work/vocab.txt") tokens:"
for lang in en zh; do
  ours=$("$build/bench_tokenize" "$work/vocab.txt" "$work/$lang.txt" "$seconds")
  echo "  ddpt   $lang $ours"
  echo "  python $lang $(python_mbps "$work/$lang.txt") MB/s (tests/parity/bert_tokenization_ref.py)"
done
