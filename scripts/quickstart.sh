#!/bin/sh
# Quickstart: from a fresh Debian 12 machine to a small BERT that has visibly
# learned English and Chinese (Debian's fortunes), used for fill-mask,
# fine-tuned into a topic classifier and exported for HuggingFace, on every
# core. Everything goes to quickstart/; run it again and it reuses what is
# there. The recipe and its measurements: docs/quickstart.md.
#
# usage: scripts/quickstart.sh [--text DIR [--format lines|docs|fortune]]
#   --text DIR: the same path on your own text (default format: lines, one
#   document per line); outputs in quickstart/own/<name of DIR>/.
set -eu
cd "$(dirname "$0")/.."

usage() { sed -n 's/^#   *//p; s/^# usage: /usage: /p' "$0" | sed -n '/^usage/,$p' >&2; exit 2; }
text="" format=""
while [ $# -gt 0 ]; do
  case $1 in
    --text) [ $# -ge 2 ] || usage; text=$2; shift 2 ;;
    --format) [ $# -ge 2 ] || usage; format=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "quickstart: unknown argument '$1'" >&2; usage ;;
  esac
done
case ${format:-lines} in lines | docs | fortune) ;; *) echo "quickstart: --format is lines, docs or fortune" >&2; exit 2 ;; esac
if [ -n "$text" ]; then
  [ -d "$text" ] || { echo "quickstart: --text $text is not a directory: give a folder of UTF-8 text files" >&2; exit 2; }
  q=quickstart/own/$(basename "$(cd "$text" && pwd)")
  format=${format:-lines}
else
  [ -z "$format" ] || { echo "quickstart: --format goes with --text DIR" >&2; exit 2; }
  q=quickstart
  text=$q/text format=fortune
fi
py=/usr/bin/python3
helper=scripts/quickstart_helper.py
config=configs/quickstart.ini
ddpt=./build/ddpt

# Timing: phase NAME ends the previous phase and starts NAME.
start=$(date +%s) t0=$start phases="" current=""
phase() {
  now=$(date +%s)
  [ -z "$current" ] || phases="$phases$(printf '  %-14s %4d s' "$current" $((now - t0)))\n"
  current=$1 t0=$now
  [ "$1" = end ] || printf '\n== %s\n' "$1"
}
reusing() { echo "reusing $1 (delete it to make it again)"; }

# Ranks x threads: a power of two of ranks (at most 8) x the rest of the
# cores as threads, and the per-rank batch that keeps the recipe's global
# batch, so every machine takes the same updates (docs/quickstart.md).
cores=$(nproc 2>/dev/null || echo 1)
ranks=1
while [ $((ranks * 2)) -le "$cores" ] && [ $((ranks * 2)) -le 8 ]; do ranks=$((ranks * 2)); done
threads=$((cores / ranks))
mpirun="mpirun -np $ranks --use-hwthread-cpus"
[ "$(id -u)" = 0 ] && mpirun="$mpirun --allow-run-as-root"
setting() { sed -n "s/^$1 *= *//p" "$2" | head -n 1; } # the first "KEY = value" of an INI file
steps=$(setting steps $config)
pre_batch=$(($(setting batch_size $config) * 2 / ranks))
ft_config=configs/quickstart-finetune.ini
ft_batch=$(($(setting batch_size $ft_config) * 2 / ranks))

phase "dependencies and build"
scripts/install-deps.sh
[ -x $ddpt ] && echo "build/ exists: cmake rebuilds only what changed"
# CI (.ci/run) runs scripts/test.sh next on the same build/: configure it the
# way test.sh does, so the tests do not recompile every source.
werror=OFF
[ "${CI:-}" = true ] && werror=ON
cmake -S . -B build -DDDPT_WERROR=$werror >/dev/null
cmake --build build -j"$cores" --target ddpt_cli
$ddpt version

phase "text"
echo "from $text"
mkdir -p "$q"
if [ "$q" = quickstart ] && [ -s "$q/topics.tsv" ] && [ -d "$q/split/valid" ]; then
  reusing "$q/text, $q/split and $q/topics.tsv"
elif [ "$q" = quickstart ]; then
  $py $helper fortunes "$q"
  echo "Debian's fortunes, English and Chinese: $(du -sh "$q/text" | cut -f1) in $q/text"
fi

phase "vocab"
echo "one WordPiece vocab for every language of the text: $q/vocab.txt"
if [ -s "$q/vocab.txt" ]; then reusing "$q/vocab.txt"; else
  $ddpt vocab --size 8000 --min-frequency 3 --out "$q/vocab.txt" "$text"
fi

phase "shard"
echo "LevelDB shards of 64-token sequences, 2% of the documents held out for validation: $q/corpus"
shard() {
  $ddpt shard --vocab "$q/vocab.txt" --out "$q/corpus" --shards 4 --seq-len 64 --format "$format" \
    --seed 1 --overwrite "$@"
}
if [ "$q" = quickstart ]; then
  $py $helper mixing "$q" # the English weight, and why the split comes first
  if [ -s "$q/corpus/manifest.json" ]; then reusing "$q/corpus"; else
    shard --valid "$q/split/valid" "$q/split/train"
  fi
elif [ -s "$q/corpus/manifest.json" ]; then reusing "$q/corpus"; else
  shard --valid-fraction 0.02 "$text"
fi

phase "pretrain"
echo "$ranks ranks x $threads threads, $steps steps of $((pre_batch * ranks)) sequences ($config)"
run=$q/run
final=ckpt-$(printf %08d "$steps").h5
if [ "$(cat "$run/LATEST" 2>/dev/null)" = "$final" ]; then
  reusing "the trained model $run/$final"
elif [ -f "$run/LATEST" ]; then
  echo "continuing the interrupted run in $run from $(cat "$run/LATEST")"
  $mpirun $ddpt train --resume "$run" --threads "$threads" --set train.batch_size=$pre_batch
else
  $mpirun $ddpt train $config --run-dir "$run" --threads "$threads" --set data.corpus="$q/corpus" \
    --set train.batch_size=$pre_batch
fi
ckpt=$run/$final

phase "evaluate"
echo "masked-token accuracy on the validation split, against the unigram plateau"
min_ratio=2.5
rc=0
$py $helper mlm "$run" $min_ratio >"$q/mlm.txt" || rc=$?
cat "$q/mlm.txt"
if [ $rc != 0 ] && [ "$q" = quickstart ]; then mlm_failed=1; fi
[ $rc = 0 ] || [ "$q" = quickstart ] || echo "(your text: a hint, not a failure; more text or steps help)"

phase "fill-mask"
echo "the 3 most probable tokens at each [MASK], with their probabilities"
fill() { $ddpt fill-mask --ckpt "$ckpt" --top-k 3 --json "$1" | $py $helper fill "$1"; }
if [ "$q" = quickstart ]; then
  # Chosen before the final model answered them, from 84 tried (all, with
  # the answers: docs/quickstart.md): slots this corpus fills, an English
  # name and collocations it repeats, and Chinese words of fortunes-zh's
  # Debian manual part (软件, 系统, 需要, 命令, 配置).
  fill "as mark [MASK] said, nothing is certain."
  fill "never trust a [MASK] who talks too much."
  fill "i don't [MASK] what you mean."
  fill "i'd love to [MASK], but i have work to do."
  fill "the [MASK] is full of stars."
  fill "我在电脑上安装了这个软[MASK]。"
  fill "这个系[MASK]很安全。"
  fill "你需[MASK]重新启动电脑。"
  fill "请输入这个命[MASK]。"
  fill "请修改配[MASK]文件。"
else
  echo "your text: try  $ddpt fill-mask --ckpt $ckpt \"a sentence with a [MASK] in it\""
fi

phase "fine-tune"
echo "a topic classifier: which file a text comes from ($ft_config)"
cls=$q/classifier
if [ "$q" != quickstart ] && [ ! -s "$q/topics.tsv" ]; then
  rc=0
  $py $helper topics "$text" "$format" "$q" || rc=$? # 3: too few files to make topics of
  [ $rc = 0 ] || [ $rc = 3 ] || exit $rc
fi
if [ ! -s "$q/topics.tsv" ]; then
  echo "skipped: no labelled set (each file of --text is one topic: give two or more files of 20+ documents)"
  cls=""
elif [ -s "$cls/report.json" ]; then
  reusing "the classifier $cls"
else
  [ -s "$q/topics/manifest.json" ] ||
    $ddpt shard --task classify --vocab "$q/vocab.txt" --out "$q/topics" --shards 2 --seq-len 64 --truncate \
      --valid-fraction 0.2 --seed 1 --overwrite "$q/topics.tsv"
  [ -f "$cls/LATEST" ] && rm -rf "$cls" # an interrupted fine-tuning is short: start it again
  $mpirun $ddpt finetune $ft_config --init "$ckpt" --run-dir "$cls" --threads "$threads" \
    --set data.corpus="$q/topics" --set train.batch_size=$ft_batch
fi
if [ -n "$cls" ]; then
  $py $helper classifier "$q/topics" "$cls"
  echo "ddpt predict on texts held out of training and validation (true topic, then the answer):"
  cut -f2 "$q/examples.tsv" | $ddpt predict --ckpt "$cls/$(cat "$cls/LATEST")" --top-k 1 >"$q/examples.out"
  paste "$q/examples.tsv" "$q/examples.out" |
    awk -F'\t' '{ printf "  %-10s -> %-22s %s\n", $1, $3, substr($2, 1, 50) }'
fi

phase "export"
echo "the pretrained model as a HuggingFace directory"
if [ -s "$q/hf/config.json" ]; then reusing "$q/hf"; else
  $ddpt export "$ckpt" --out "$q/hf"
fi

phase "plot"
$py scripts/plot_metrics.py "$run"

phase end
printf '\n== wall time per phase\n%b' "$phases"
printf '  %-14s %4d s\n' total $(($(date +%s) - start))
cat <<EOF

== where everything is ($q/)
  text, vocab.txt, corpus/      the training text, its WordPiece vocab, the LevelDB shards
  split/                        what pretraining reads: valid/ held out first, train/ with the mixing weight
  run/                          pretraining: checkpoints, LATEST, config.ini, metrics.jsonl, metrics.png
  classifier/, topics/          the fine-tuned topic classifier (report.json) and its labelled corpus
  hf/                           the pretrained model for HuggingFace (BertForMaskedLM.from_pretrained)

== next
  train longer (resume):  $mpirun $ddpt train --resume $run --set train.steps=$((steps * 2))
  more ranks (any count): mpirun -np 4 --oversubscribe --allow-run-as-root $ddpt train --resume $run --set train.steps=$((steps * 2))
  your own text:          scripts/quickstart.sh --text DIR   (ddpt help shard: formats)
  a released model:       $ddpt import bert-base-chinese/ --out bert.h5   then  ddpt train CONFIG --init bert.h5
  export:                 $ddpt export $run/$final --out DIR
  all commands:           $ddpt --help;  the user guide: README.md
EOF
printf '\n== what pretraining reached (validation split)\n'
cat "$q/mlm.txt"
if [ "${mlm_failed:-0}" = 1 ]; then
  echo "quickstart: FAILED: MLM accuracy below $min_ratio x the most frequent token's (above)" >&2
  exit 1
fi
