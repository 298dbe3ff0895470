#!/bin/sh
# `cmake --install` into a fresh prefix gives a ddpt that works with the
# source and build trees out of sight (a mount namespace lays an empty
# tmpfs over each): from PATH it prints its version and help, man finds
# ddpt(1), the bash completion completes, and the installed scripts and
# configs take a small text from a vocab to a trained checkpoint, a metrics
# plot and fill-mask.
# usage: install.sh BUILD_DIR SOURCE_DIR   (as root: it needs unshare --mount)
set -eu
# shellcheck source=lib/e2e.sh
. "$(dirname "$0")/lib/e2e.sh"
need_root "(unshare --mount hides the source tree)"
build=$(realpath "$1")
src=$(realpath "$2")
prefix=$dir/prefix

cmake --install "$build" --prefix "$prefix" >"$dir/install.log" 2>&1 || fail "cmake --install failed: $(tail -3 "$dir/install.log")"
for f in bin/ddpt share/ddpt/configs/bert-tiny.ini share/ddpt/configs/bert-base.ini \
  share/ddpt/scripts/shard_corpus.sh share/ddpt/scripts/plot_metrics.py \
  share/ddpt/scripts/torch_to_safetensors.py share/ddpt/scripts/slurm/pretrain.sbatch share/man/man1/ddpt.1.gz \
  share/bash-completion/completions/ddpt share/doc/ddpt/README.md; do
  [ -s "$prefix/$f" ] || fail "cmake --install put no $f in the prefix"
done
for f in bin/ddpt share/ddpt/scripts/shard_corpus.sh share/ddpt/scripts/plot_metrics.py; do
  [ -x "$prefix/$f" ] || fail "installed $f is not executable"
done
mkdir "$dir/text"
sh "$src/tests/lib/words_text.sh" "$dir/text" || fail "tests/lib/words_text.sh failed"

# What runs with the trees hidden; stdout and stderr go to run.log.
cat >"$dir/run.sh" <<'EOF'
set -eu
prefix=$1
cd "$(dirname "$prefix")"
export PATH="$prefix/bin:/usr/bin:/bin" MANPATH="$prefix/share/man"
unset DDPT
step() { echo "== $*"; }
step "ddpt from PATH"
[ "$(command -v ddpt)" = "$prefix/bin/ddpt" ]
ddpt version
ddpt help train | grep -q '^Examples:'
step "man finds ddpt(1)"
[ "$(man -w ddpt)" = "$prefix/share/man/man1/ddpt.1.gz" ]
man -l "$prefix/share/man/man1/ddpt.1.gz" 2>/dev/null | grep -q 'ddpt fill-mask'
step "bash completion"
bash -c '. "$1/share/bash-completion/completions/ddpt" && complete -p ddpt >/dev/null &&
  COMP_WORDS=(ddpt tr) COMP_CWORD=1 && _ddpt && [ "${COMPREPLY[*]}" = train ]' sh "$prefix"
step "shard_corpus.sh, ddpt train with the installed bert-tiny.ini, plot, fill-mask"
"$prefix/share/ddpt/scripts/shard_corpus.sh" --vocab-size 120 --shards 2 --seq-len 32 text/text.txt corpus
ddpt train "$prefix/share/ddpt/configs/bert-tiny.ini" --set data.corpus=corpus --set train.steps=3 \
  --set train.batch_size=4 --set checkpoint.every=3 --set log.eval_every=0 --set log.every=1 \
  --run-dir run --threads 1
"$prefix/share/ddpt/scripts/plot_metrics.py" run
[ -s run/metrics.png ]
ddpt fill-mask --ckpt "run/$(cat run/LATEST)" --top-k 2 "w001 w002 [MASK] w004"
EOF
# The build tree first: it may lie inside the source tree.
unshare --mount sh -c 'for d in "$3" "$2"; do mount -t tmpfs none "$d" || exit 1; done
  [ -z "$(ls -A "$2")" ] || exit 1
  exec sh -x "$1/run.sh" "$1/prefix"' sh "$dir" "$src" "$build" >"$dir/run.log" 2>&1 ||
  fail "the installed ddpt failed with the source tree hidden; the end of its log:
$(tail -15 "$dir/run.log")"
echo "install: ok"
