#!/bin/sh
# Quickstart: from a fresh Debian 12 machine to ddpt's main job on the
# bundled default corpus (Debian's fortunes: real, messy English text).
# Today it builds ddpt and shows the libraries it runs with; the stages that
# follow appear here as they land (see README.md, "Status").
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"

./build/ddpt version
cat <<'MSG'

ddpt is built: ./build/ddpt
The full quickstart will, on the bundled fortunes corpus:
  1. train a WordPiece vocabulary          ddpt vocab
  2. shard the text into LevelDB           ddpt shard
  3. pretrain bert-tiny on all cores       mpirun -np 2 ddpt train configs/bert-tiny.ini
  4. show what the model learned           ddpt fill-mask
Those commands are not in this build yet.
MSG
