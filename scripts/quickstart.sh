#!/bin/sh
# Quickstart: from a fresh Debian 12 machine to a pretrained bert-tiny on the
# bundled default corpus (Debian's fortunes: real, messy English text), on
# every core of this machine. Everything it makes goes to quickstart/; run it
# again and it reuses what is there (and resumes the training run).
set -eu
cd "$(dirname "$0")/.."
q=quickstart
cores=$(nproc 2>/dev/null || echo 2)

scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$cores"
ddpt=./build/ddpt
$ddpt version

mkdir -p "$q/text"
for f in computers science literature wisdom people politics work love education fortunes \
  humorists definitions linux miscellaneous; do
  cp /usr/share/games/fortunes/$f "$q/text/"
done

echo "== 1. WordPiece vocabulary from the text ($q/vocab.txt)"
[ -s "$q/vocab.txt" ] || $ddpt vocab --size 6000 --min-frequency 3 --out "$q/vocab.txt" "$q/text"

echo "== 2. LevelDB shards of 128-token sequences ($q/corpus)"
[ -s "$q/corpus/manifest.json" ] ||
  $ddpt shard --vocab "$q/vocab.txt" --out "$q/corpus" --shards 4 --seq-len 128 --format fortune \
    --valid-fraction 0.02 --seed 1 --overwrite "$q/text"
$ddpt corpus info "$q/corpus" | head -8

echo "== 3. pretrain bert-tiny: $cores ranks x 1 thread (configs/bert-tiny.ini)"
mpirun="mpirun -np $cores"
[ "$(id -u)" = 0 ] && mpirun="$mpirun --allow-run-as-root"
if [ -f "$q/run/LATEST" ]; then
  $mpirun $ddpt train --resume "$q/run" --threads 1
else
  $mpirun $ddpt train configs/bert-tiny.ini --run-dir "$q/run" --threads 1
fi
/usr/bin/python3 scripts/plot_metrics.py "$q/run"

echo "== 4. what it learned"
ckpt="$q/run/$(cat "$q/run/LATEST")"
$ddpt ckpt verify "$ckpt"
$ddpt fill-mask --ckpt "$ckpt" --vocab "$q/vocab.txt" --top-k 5 "the best way to predict the [MASK] is to invent it."
echo
echo "Done. Loss curve: $q/run/metrics.png; checkpoints: $q/run/; more: README.md."
