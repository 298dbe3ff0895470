#!/bin/sh
# Corpus throughput: `ddpt shard` end to end on ~48 MB of Debian fortunes
# (the whole collection, ten times), then the single-thread reader (samples
# per second of wall time and per CPU-second of the reading thread, which a
# loaded machine does not distort), then the time to open 64 shards.
# usage: bench/corpus_bench.sh [BUILD_DIR]   (default: build)
set -eu
build=$(cd "${1:-build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ddpt-corpus-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/text"
for f in /usr/share/games/fortunes/*; do
  case "$f" in *.dat|*.u8) continue ;; esac
  [ -f "$f" ] && cat "$f"
done > "$work/text/once.txt"
for i in 1 2 3 4 5 6 7 8 9 10; do cat "$work/text/once.txt"; done > "$work/text/all.txt"
rm "$work/text/once.txt"
"$build/ddpt" vocab --size 8000 --out "$work/vocab.txt" "$work/text" >/dev/null
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/ddpt" shard --vocab "$work/vocab.txt" --out "$work/corpus" --shards 8 --seq-len 128 \
  --format fortune "$work/text" | grep -E "input|on disk|sequences"
"$build/bench_corpus_reader" "$work/corpus" 32 3
"$build/bench_corpus_reader" "$work/corpus" 32 3 --whole-word
"$build/ddpt" shard --vocab "$work/vocab.txt" --out "$work/corpus64" --shards 64 --seq-len 128 \
  --format fortune "$work/text" >/dev/null
"$build/bench_corpus_reader" "$work/corpus64" 32 0.2 | grep "^open"
