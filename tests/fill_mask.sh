#!/bin/sh
# ddpt fill-mask end to end: train bert-tiny for 150 steps on six sentences
# repeated (seq_len 8: each sequence is exactly one sentence), then what a
# user would check: fill-mask puts the word the sentences teach first with
# probability above 0.9, at the right position, also with two masks, one
# glued to the word before it; --json parses and has the documented
# fields; the vocab recorded in the checkpoint serves when --vocab is not
# given; and bad inputs (no [MASK], too long, a vocab other than the
# recorded one, a missing, truncated or damaged checkpoint, bad options)
# fail with one line.
set -eu
ddpt=$1
py=/usr/bin/python3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "fill_mask: $*"; exit 1; }

"$py" - "$dir" <<'PY'
import sys
d = sys.argv[1]
sentences = ["the cat sat on the mat", "a dog ran in the park", "my bird flew over her house",
             "his fish swam under our bridge", "your horse jumped across their field",
             "one mouse hid behind that door"]
words = sorted({w for s in sentences for w in s.split()} | {"spare", "unused", "words"})
with open(d + "/vocab.txt", "w") as f:
    f.write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words) + "\n")
with open(d + "/text.txt", "w") as f:
    for i in range(600):
        f.write(sentences[(i * 5) % len(sentences)] + "\n")
PY
"$ddpt" shard --vocab "$dir/vocab.txt" --out "$dir/corpus" --shards 1 --seq-len 8 --format lines \
  --seed 1 "$dir/text.txt" >/dev/null || fail "ddpt shard failed"
printf '[model]\npreset = bert-tiny\nmax_position_embeddings = 16\n' >"$dir/tiny.ini"
"$ddpt" train "$dir/tiny.ini" --run-dir "$dir/run" --threads 2 --set data.corpus="$dir/corpus" \
  --set train.steps=150 --set train.batch_size=32 --set optim.lr=3e-3 --set optim.clip_norm=1 \
  --set schedule.warmup_steps=10 --set data.mask_prob=0.4 --set log.every=50 --set log.eval_every=0 \
  --set checkpoint.every=0 --set model.hidden_dropout_prob=0 --set model.attention_probs_dropout_prob=0 >"$dir/train.out" 2>&1 || { cat "$dir/train.out"; fail "ddpt train failed"; }
ckpt="$dir/run/$(cat "$dir/run/LATEST")"
[ "$ckpt" = "$dir/run/ckpt-00000150.h5" ] || fail "LATEST names $ckpt"

fill() { "$ddpt" fill-mask --ckpt "$ckpt" --vocab "$dir/vocab.txt" "$@"; }

# The table: the taught word first, well above the rest.
out=$(fill "the cat [MASK] on the mat") || fail "fill-mask failed: $out"
echo "$out"
echo "$out" | grep -q "^input: \[CLS\] the cat \[MASK\] on the mat \[SEP\]$" || fail "input line missing"
echo "$out" | grep -q "^\[MASK\] 1 of 1, position 3:$" || fail "mask heading missing"
echo "$out" | sed -n 4p | grep -qE "^ +1  sat +[0-9]+  0\.9[0-9]{5}$" || fail "sat is not first with p > 0.9"
[ "$(echo "$out" | grep -cE '^ +[0-9]+  ')" = 5 ] || fail "not 5 candidates by default"

# The recorded vocab: the same answer without --vocab.
bare=$("$ddpt" fill-mask --ckpt "$ckpt" "the cat [MASK] on the mat") || fail "fill-mask without --vocab: $bare"
[ "$bare" = "$out" ] || fail "fill-mask without --vocab differs from --vocab vocab.txt"

# JSON: two masks, one glued to the word before it; --top-k 3.
fill --json --top-k 3 "his fish [MASK] under our[MASK]" >"$dir/out.json" \
  || fail "fill-mask --json failed"
"$py" - "$dir/out.json" <<'PY' || fail "JSON check failed"
import json, sys
r = json.load(open(sys.argv[1]))
assert set(r) == {"tokens", "masks"}, r.keys()
assert r["tokens"] == ["[CLS]", "his", "fish", "[MASK]", "under", "our", "[MASK]", "[SEP]"], r["tokens"]
assert [m["position"] for m in r["masks"]] == [3, 6], r["masks"]
for m, want in zip(r["masks"], ["swam", "bridge"]):
    p = m["predictions"]
    assert len(p) == 3 and all(set(x) == {"token", "id", "prob"} for x in p), p
    assert p[0]["token"] == want and p[0]["prob"] > 0.9, (want, p)
    assert all(a["prob"] >= b["prob"] for a, b in zip(p, p[1:])), p
    assert all(isinstance(x["id"], int) and 0 <= x["prob"] <= 1 for x in p), p
print("json: ok", [(m["position"], m["predictions"][0]) for m in r["masks"]])
PY

# Bad inputs: exit 1 (2 for usage) and one line that says what is wrong.
expect() { # exit-status grep-pattern description fill-mask-args...
  want=$1 pattern=$2 what=$3; shift 3
  got=0; "$ddpt" fill-mask "$@" >"$dir/bad.out" 2>"$dir/bad.err" || got=$?
  [ "$got" = "$want" ] || { cat "$dir/bad.err"; fail "$what: exit $got, want $want"; }
  head -1 "$dir/bad.err" | grep -q "$pattern" || fail "$what: '$(head -1 "$dir/bad.err")' lacks '$pattern'"
  [ "$want" = 2 ] || [ "$(wc -l <"$dir/bad.err")" = 1 ] || fail "$what: more than one line: $(cat "$dir/bad.err")"
  [ ! -s "$dir/bad.out" ] || fail "$what: printed results"
}
v="--vocab $dir/vocab.txt"
expect 1 "has no \[MASK\]" "no mask" --ckpt "$ckpt" $v "the cat sat on the mat"
expect 1 "is 18 tokens .* at most 16" "too long" --ckpt "$ckpt" $v \
  "the cat [MASK] on the mat the cat sat on the mat the cat sat on"
head -n 20 "$dir/vocab.txt" >"$dir/small.txt"
expect 1 "vocab $dir/small.txt (sha256 [0-9a-f]*...) is not the vocab checkpoint .* was trained with" \
  "wrong vocab" --ckpt "$ckpt" --vocab "$dir/small.txt" "the [MASK]"
# The same size, two tokens swapped: every id is in range, so only the
# recorded vocab's hash tells (issue 16, row 12: this once printed wrong
# tokens and exited 0).
{ sed -n 2p "$dir/vocab.txt"; sed -n 1p "$dir/vocab.txt"; sed -n '3,$p' "$dir/vocab.txt"; } >"$dir/swapped.txt"
[ "$(wc -l <"$dir/swapped.txt")" = "$(wc -l <"$dir/vocab.txt")" ] || fail "the swapped vocab changed size"
expect 1 "vocab $dir/swapped.txt (sha256 [0-9a-f]*...) is not the vocab checkpoint .* was trained with" \
  "same-size vocab" --ckpt "$ckpt" --vocab "$dir/swapped.txt" "the [MASK]"
expect 1 "nothing.h5: cannot open" "missing checkpoint" --ckpt "$dir/nothing.h5" $v "the [MASK]"
head -c 5000 "$ckpt" >"$dir/truncated.h5"
expect 1 "truncated.h5" "truncated checkpoint" --ckpt "$dir/truncated.h5" $v "the [MASK]"
# Flip bytes in the middle of the largest tensor's data: a Fletcher-32 error.
cp "$ckpt" "$dir/damaged.h5"
"$py" - "$dir/damaged.h5" <<'PY'
import h5py, sys
with h5py.File(sys.argv[1], "r") as f:
    d = f["params/bert.encoder.layer.0.intermediate.dense.weight"]
    off = d.id.get_chunk_info(0).byte_offset
with open(sys.argv[1], "r+b") as f:
    f.seek(off + 100)
    f.write(b"\xff\xfe\xfd\xfc")
PY
expect 1 "damaged.h5" "damaged checkpoint" --ckpt "$dir/damaged.h5" $v "the [MASK]"
# A NaN written through HDF5, so its Fletcher-32 checksum is valid (issue
# 16, row 5): fill-mask refuses it, and ckpt verify says what is wrong.
cp "$ckpt" "$dir/nan.h5"
"$py" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); f['params/bert.embeddings.LayerNorm.bias'][3] = float('nan'); f.close()" "$dir/nan.h5"
expect 1 "params/bert.embeddings.LayerNorm.bias holds a non-finite value (nan at element 3)" "nan checkpoint" \
  --ckpt "$dir/nan.h5" $v "the [MASK]"
vout=$("$ddpt" ckpt verify "$dir/nan.h5" 2>&1) && fail "ckpt verify accepts a NaN: $vout"
echo "$vout" | grep -q "non-finite" || fail "ckpt verify on a NaN: $vout"
expect 2 "give --ckpt" "no checkpoint" $v "the [MASK]"
expect 2 "top-k: '0'" "bad top-k" --ckpt "$ckpt" $v --top-k 0 "the [MASK]"
expect 2 "give the text" "no text" --ckpt "$ckpt" $v
echo "fill_mask: ok"
