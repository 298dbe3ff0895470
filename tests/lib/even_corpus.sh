#!/bin/sh
# Makes DIR/corpus: 12 shards of exactly 40 sequences each (words_text.sh's
# 480 documents of 30 one-token words; with seq_len 32 each is one [CLS] ...
# [SEP] sequence), so that every world size that divides 12 reads the same
# samples per step.
# usage: even_corpus.sh DDPT DIR
set -eu
ddpt=$1 dir=$2
"$(dirname "$0")/words_text.sh" "$dir"
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/corpus" --shards 12 --seq-len 32 --format lines \
  --seed 1 "$dir/text.txt" >/dev/null
