#!/usr/bin/python3
"""`ddpt predict` against PyTorch on the same fine-tuned checkpoints.

Writes, with h5py and the documented checkpoint format (docs/checkpoint.md:
root attributes, the [model] config text with task / num_labels / crf,
/params by HuggingFace name, the recorded vocab and label names), tiny BERTs
with random weights: tests/parity/bert_reference.py's
BertForSequenceClassification and BertForTokenClassification, with and
without its CRF (pytorch-crf's names), so nothing here depends on `ddpt
finetune`. Then, on the same lines:
  1. classify (texts and text_a<TAB>text_b pairs, batches of mixed lengths,
     lines longer than the model's positions cut longest_first as `ddpt
     shard --truncate` cuts them): every probability of `ddpt predict --json`
     is within 1e-5 of the float64 PyTorch softmax, the label is its argmax,
     "top" is the --top-k best in order, "truncated" is right;
  2. tag, without and with the CRF: words split at whitespace with every CJK
     character a word of its own, the tag at each word's first piece equals
     PyTorch's argmax (numpy Viterbi with the CRF), and the spans are
     conlleval's chunks of those tags (BIO and BMES);
  3. the plain output says the same as the JSON, blank lines give blank
     lines (null in JSON), and --batch does not change any result;
  4. a checkpoint `ddpt finetune` wrote (a few steps from the classify
     checkpoint above on a small labelled corpus) loads into the reference
     BertForSequenceClassification with load_state_dict(strict=True), and
     `ddpt predict` matches it within 1e-5 there too;
  5. refusals, one line each: a pretraining checkpoint (no task head), a
     vocab other than the recorded one, a line with two TABs (naming
     FILE:LINE), fill-mask on a fine-tuned checkpoint; usage errors exit 2.
argv[1] is the ddpt executable.
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
import bert_tokenization_ref as tokref  # noqa: E402
from harness import fail  # noqa: E402

TOL = 1e-5
MAX_POS = 24  # small, so that long lines are cut
SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
             max_position_embeddings=MAX_POS, type_vocab_size=2, layer_norm_eps=1e-12,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
WORDS = ("the cat sat on mat a dog ran in park my bird flew over her house john smith lives "
         "london paris visited with friend good bad movie was not very").split()
PIECES = ["##s", "##ing", "##ed", "un", "##able", "play", "walk"]
CJK = list("我爱北京天安门中国人民上海是的")
LABELS_CLASS = ["bad", "good", "neutral"]
LABELS_BIO = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
LABELS_BMES = ["B", "E", "M", "S"]


def write_vocab(path, extra=()):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?"] + WORDS + PIECES + CJK + list(extra)
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return tokens


def randomize(model, seed):
    """Weights large enough that the probabilities are far from uniform."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def write_ckpt(path, model, vocab_tokens, model_keys, labels, shape=None):
    """A weights-only ddpt checkpoint of model (docs/checkpoint.md), recording
    the vocab and the label names; shape: the [model] sizes (default SHAPE)."""
    config = "[model]\npreset = bert-tiny\nvocab_size = %d\n" % len(vocab_tokens)
    config += "".join("%s = %s\n" % kv for kv in (shape or SHAPE).items()) + "".join("%s = %s\n" % kv for kv in model_keys)
    with h5py.File(path, "w", libver=("v108", "v108")) as f:  # checksummed metadata, as ddpt reads
        for k, v in (("format", "ddpt-checkpoint"), ("model_type", "bert"), ("config", config),
                     ("ddpt_version", "predict_parity.py"), ("created", "2026-01-01T00:00:00Z"),
                     ("vocab", "\n".join(vocab_tokens) + "\n"), ("vocab_lowercase", "1")):
            f.attrs[k] = np.bytes_(v.encode())  # fixed-length, as ddpt writes them
        for k in ("format_version", "step", "tokens_seen", "world_size"):
            f.attrs[k] = np.int64(1 if k in ("format_version", "world_size") else 0)
        f.attrs["seed"] = np.uint64(0)
        if labels is not None:
            f.attrs["labels"] = np.bytes_(json.dumps(labels).encode())
        g = f.create_group("params")
        for name, t in model.state_dict().items():
            g.create_dataset(name, data=t.detach().float().numpy(), fletcher32=True, chunks=True)


def pieces_of(text, vocab):
    out = []
    for w in tokref.basic_tokenize(text, True):
        out.extend(tokref.wordpiece(w, vocab))
    return [vocab[p] for p in out]


def build_classify(line, vocab, seq_len):
    """[CLS] a [SEP] (b [SEP]) cut as HuggingFace's longest_first; ids, segments, truncated."""
    parts = line.split("\t")
    a = pieces_of(parts[0], vocab)
    b = pieces_of(parts[1], vocab) if len(parts) == 2 else []
    room = seq_len - (3 if len(parts) == 2 else 2)
    truncated = len(a) + len(b) > room
    while len(a) + len(b) > room:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    ids = [vocab["[CLS]"]] + a + [vocab["[SEP]"]]
    seg = [0] * len(ids)
    if len(parts) == 2:
        ids += b + [vocab["[SEP]"]]
        seg += [1] * (len(b) + 1)
    return ids, seg, truncated


def split_words(line):
    """Whitespace-separated tokens, every CJK character a word of its own."""
    words = []
    for tok in line.split():
        cur = ""
        for ch in tok:
            if tokref.is_cjk(ord(ch)):
                if cur:
                    words.append(cur)
                words.append(ch)
                cur = ""
            else:
                cur += ch
        if cur:
            words.append(cur)
    return words


def build_tag(line, vocab, seq_len):
    """[CLS] pieces [SEP] (pieces past seq_len - 2 cut), first-piece positions, words."""
    words = split_words(line)
    ids, first = [vocab["[CLS]"]], []
    for w in words:
        p = pieces_of(w, vocab) or [vocab["[UNK]"]]
        first.append(len(ids))
        ids.extend(p)
    ids = ids[:seq_len - 1] + [vocab["[SEP]"]]
    first = [f for f in first if f < seq_len - 1]
    return ids, first, words


def viterbi(emis, trans, start, end):
    score = start + emis[0]
    back = []
    for e in emis[1:]:
        cand = score[:, None] + trans + e[None, :]
        back.append(cand.argmax(axis=0))
        score = cand.max(axis=0)
    score = score + end
    best = [int(score.argmax())]
    for b in reversed(back):
        best.append(int(b[best[-1]]))
    return best[::-1]


def chunks(tags):
    """conlleval's chunks [start, end, type] (M read as I), as task_metrics.h."""
    def split(t):
        if t == "O":
            return "O", ""
        p, _, ty = t.partition("-")
        return ("I" if p == "M" else p), ty

    out, start = [], None
    prev, prev_type = "O", ""
    for i, t in enumerate(list(tags) + ["O"]):
        tag, ty = split(t)
        end = (prev in ("E", "S") or (prev in ("B", "I") and tag in ("B", "S", "O"))
               or (prev != "O" and prev_type != ty))
        begin = (tag in ("B", "S") or (prev in ("E", "S", "O") and tag in ("E", "I"))
                 or (tag != "O" and prev_type != ty))
        if start is not None and end:
            out.append([start, i, prev_type])
            start = None
        if begin and tag != "O":
            start = i
        prev, prev_type = tag, ty
    return out


def ddpt(exe, *args, stdin=None):
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True)


def predict(exe, ckpt, lines, *args):
    p = ddpt(exe, "predict", "--ckpt", ckpt, *args, "-", stdin="".join(l + "\n" for l in lines))
    if p.returncode != 0:
        fail("ddpt predict %s exited %d: %s" % (" ".join(args), p.returncode, p.stderr.strip()))
    out = p.stdout.split("\n")
    if out[-1] != "" or len(out) - 1 != len(lines):
        fail("ddpt predict %s: %d output lines for %d inputs" % (" ".join(args), len(out) - 1, len(lines)))
    return out[:-1]


def random_lines(rng, n, pair_share, tokens):
    lines = []
    for i in range(n):
        def text():
            k = int(rng.integers(1, 9)) if rng.random() < 0.85 else int(rng.integers(15, 40))
            return " ".join(str(rng.choice(tokens)) for _ in range(k))
        lines.append(text() + ("\t" + text() if rng.random() < pair_share else ""))
    return lines


def check_classify(exe, d, vocab_tokens, vocab):
    torch.manual_seed(0)
    c = ref.Config(vocab_size=len(vocab_tokens), **SHAPE)
    model = ref.BertForSequenceClassification(c, len(LABELS_CLASS))
    randomize(model, 1)
    ckpt = os.path.join(d, "classify.h5")
    write_ckpt(ckpt, model, vocab_tokens, [("task", "classify"), ("num_labels", 3)], LABELS_CLASS)
    model = model.double().eval()
    rng = np.random.default_rng(5)
    tokens = WORDS + ["playing", "unwalkable", "walked", "!", "?"] + CJK + ["北京天安门", "Ünïcödé"]
    lines = random_lines(rng, 60, 0.4, tokens)
    lines[3] = " ".join(tokens[:30])                       # one long text
    lines[4] = " ".join(WORDS[:20]) + "\t" + " ".join(WORDS[5:12])  # a long pair: a is cut
    lines[5] = "good movie\t" + " ".join(WORDS * 2)        # b is cut
    lines[6] = ""                                          # blank
    lines[7] = "  \t "                                      # blank too
    # Batches of 7 and 32 pad differently (and one thread splits no GEMM):
    # each is checked against PyTorch.
    outs = {7: predict(exe, ckpt, lines, "--json", "--top-k", "2", "--batch", "7"),
            32: predict(exe, ckpt, lines, "--json", "--top-k", "2", "--threads", "1")}
    plain = predict(exe, ckpt, lines, "--top-k", "2", "--batch", "7")
    worst, cut = 0.0, 0
    for batch, i in [(b, i) for b in (7, 32) for i in range(len(lines))]:
        line, got = lines[i], json.loads(outs[batch][i])
        if not line.strip():
            if got is not None or plain[i] != "":
                fail("line %d is blank: got %r and %r, want null and ''" % (i + 1, outs[7][i], plain[i]))
            continue
        ids, seg, truncated = build_classify(line, vocab, MAX_POS)
        with torch.no_grad():
            t = torch.tensor([ids])
            probs = torch.softmax(model(t, torch.tensor([seg]), torch.ones_like(t))[1][0], -1).numpy()
        if set(got) != {"label", "probs", "top", "truncated"}:
            fail("classify JSON keys %s" % sorted(got))
        for k, name in enumerate(LABELS_CLASS):
            dp = abs(got["probs"][name] - probs[k])
            worst = max(worst, dp)
            if dp > TOL:
                fail("line %d %r: p(%s) %.8f in ddpt, %.8f in PyTorch" % (i + 1, line, name, got["probs"][name], probs[k]))
        order = sorted(range(len(LABELS_CLASS)), key=lambda k: (-probs[k], k))
        if got["label"] != LABELS_CLASS[order[0]] or [x["label"] for x in got["top"]] != [LABELS_CLASS[k] for k in order[:2]]:
            fail("line %d: label %s top %s, want order %s" % (i + 1, got["label"], got["top"], order))
        if got["truncated"] != truncated:
            fail("line %d (%d ids): truncated %s, want %s" % (i + 1, len(ids), got["truncated"], truncated))
        cut += truncated and batch == 7
        want_plain = "\t".join("%s:%.6f" % (x["label"], x["prob"]) for x in got["top"])
        if batch == 7 and plain[i] != want_plain:
            fail("line %d: plain %r, JSON says %r" % (i + 1, plain[i], want_plain))
    if cut < 3:
        fail("only %d lines were cut: the test lost its long lines" % cut)
    print("classify: %d lines (%d pairs, %d cut longest_first): max |dp| %.2e vs PyTorch float64, same labels"
          % (sum(1 for l in lines if l.strip()), sum("\t" in l for l in lines if l.strip()), cut, worst))
    return ckpt


def check_finetuned(exe, d, vocab_path, vocab_tokens, vocab, init):
    """4: fine-tune from init, load what ddpt wrote into PyTorch, compare."""
    rng = np.random.default_rng(11)
    tsv = os.path.join(d, "ft.tsv")
    with open(tsv, "w") as f:
        for i in range(80):
            words = [str(w) for w in rng.choice(WORDS, int(rng.integers(2, 10)))]
            f.write("%s\t%s\n" % (LABELS_CLASS[i % 3], " ".join(words)))
    corpus, run_dir, ini = (os.path.join(d, n) for n in ("ft-corpus", "ft-run", "ft.ini"))
    with open(ini, "w") as f:
        f.write("[optim]\nlr = 1e-2\n[train]\nsteps = 5\nbatch_size = 8\n")
    for argv in (["shard", "--task", "classify", "--vocab", vocab_path, "--out", corpus, "--shards", "1",
                  "--seq-len", str(MAX_POS), "--truncate", tsv],
                 ["finetune", ini, "--init", init, "--run-dir", run_dir, "--threads", "1",
                  "--set", "data.corpus=" + corpus, "--set", "log.eval_every=0"]):
        p = ddpt(exe, *argv)
        if p.returncode != 0:
            fail("ddpt %s exited %d: %s" % (argv[0], p.returncode, (p.stdout + p.stderr)[-2000:]))
    ckpt = os.path.join(run_dir, "ckpt-00000005.h5")
    model = ref.BertForSequenceClassification(ref.Config(vocab_size=len(vocab_tokens), **SHAPE), len(LABELS_CLASS))
    with h5py.File(ckpt, "r") as f, h5py.File(init, "r") as f0:
        state = {k: torch.from_numpy(v[()]) for k, v in f["params"].items()}
        moved = max(float(np.abs(v[()] - f0["params"][k][()]).max()) for k, v in f["params"].items())
    model.load_state_dict(state, strict=True)
    if moved == 0:
        fail("fine-tuning moved no weight: the check would compare the init again")
    model = model.double().eval()
    lines = random_lines(rng, 40, 0.3, WORDS)
    got = predict(exe, ckpt, lines, "--json")
    worst = 0.0
    for i, line in enumerate(lines):
        ids, seg, _ = build_classify(line, vocab, MAX_POS)
        with torch.no_grad():
            t = torch.tensor([ids])
            probs = torch.softmax(model(t, torch.tensor([seg]), torch.ones_like(t))[1][0], -1).numpy()
        g = json.loads(got[i])
        for k, name in enumerate(LABELS_CLASS):
            worst = max(worst, abs(g["probs"][name] - probs[k]))
    if worst > TOL:
        fail("a ddpt finetune checkpoint: predict differs from PyTorch by %.2e > %g" % (worst, TOL))
    print("finetuned: ddpt finetune's checkpoint (weights moved up to %.3f) loads strictly into PyTorch; "
          "%d lines: max |dp| %.2e" % (moved, len(lines), worst))


def check_tag(exe, d, vocab_tokens, vocab, labels, crf, lines):
    c = ref.Config(vocab_size=len(vocab_tokens), **SHAPE)
    model = ref.BertForTokenClassification(c, len(labels), crf)
    randomize(model, 2 + crf)
    if crf:  # transitions strong enough that Viterbi and argmax disagree
        with torch.no_grad():
            for p in model.crf.parameters():
                p.mul_(8)
    name = "tag-crf" if crf else "tag"
    ckpt = os.path.join(d, name + ".h5")
    write_ckpt(ckpt, model, vocab_tokens,
               [("task", "tag"), ("num_labels", len(labels)), ("crf", "true" if crf else "false")], labels)
    model = model.double().eval()
    outs = {b: predict(exe, ckpt, lines, "--json", "--batch", str(b)) for b in (3, 32)}
    if outs[3] != outs[32]:
        fail("%s: --batch 3 and --batch 32 print different results" % name)
    plain = predict(exe, ckpt, lines)
    words_total, spans_total, cut, not_argmax = 0, 0, 0, 0
    for i, line in enumerate(lines):
        got = json.loads(outs[3][i])
        if not line.strip():
            if got is not None or plain[i] != "":
                fail("%s line %d is blank: got %r and %r" % (name, i + 1, outs[3][i], plain[i]))
            continue
        ids, first, words = build_tag(line, vocab, MAX_POS)
        with torch.no_grad():
            t = torch.tensor([ids])
            logits = model(t, torch.zeros_like(t), torch.ones_like(t))[1]
        emis = logits[0].numpy()[first]
        if crf:
            want = viterbi(emis, model.crf.transitions.detach().numpy(), model.crf.start_transitions.detach().numpy(),
                           model.crf.end_transitions.detach().numpy())
        else:
            want = [int(k) for k in emis.argmax(axis=1)]
        not_argmax += sum(int(a) != b for a, b in zip(emis.argmax(axis=1), want))
        chain = torch.full(t.shape, -100, dtype=torch.long)
        chain[0, first] = 0
        if model.decode(logits, chain)[0, first].tolist() != want:
            fail("%s line %d: bert_reference's decode disagrees with the test's own" % (name, i + 1))
        want = [labels[k] for k in want]
        if set(got) != {"tokens", "tags", "spans", "truncated"}:
            fail("tag JSON keys %s" % sorted(got))
        if got["tokens"] != words[:len(first)]:
            fail("%s line %d: tokens %s, want %s" % (name, i + 1, got["tokens"], words[:len(first)]))
        if got["tags"] != want:
            fail("%s line %d %r: tags %s, PyTorch %s" % (name, i + 1, line, got["tags"], want))
        if got["truncated"] != (len(first) < len(words)):
            fail("%s line %d: truncated %s with %d of %d words" % (name, i + 1, got["truncated"], len(first), len(words)))
        spans = [[s["start"], s["end"], s["type"]] for s in got["spans"]]
        if spans != chunks(want):
            fail("%s line %d: spans %s, conlleval's %s" % (name, i + 1, spans, chunks(want)))
        want_plain = " ".join("%s/%s" % wt for wt in zip(got["tokens"], got["tags"]))
        for s in got["spans"]:
            want_plain += "\t" + s["text"] + ("/" + s["type"] if s["type"] else "")
        if plain[i] != want_plain:
            fail("%s line %d: plain %r, JSON says %r" % (name, i + 1, plain[i], want_plain))
        words_total += len(first)
        spans_total += len(spans)
        cut += len(first) < len(words)
    if crf and not_argmax < 10:
        fail("%s: Viterbi differs from argmax at only %d words: the test cannot tell them apart" % (name, not_argmax))
    print("%s: %d lines, %d words, %d spans, %d lines cut: every tag equals PyTorch's %s"
          % (name, sum(1 for l in lines if l.strip()), words_total, spans_total, cut,
             "Viterbi (numpy; %d words where it is not the argmax)" % not_argmax if crf else "argmax"))
    return ckpt


def expect_fail(exe, args, stdin, code, pattern, what):
    p = ddpt(exe, *args, stdin=stdin)
    if p.returncode != code:
        fail("%s: exit %d, want %d (%s)" % (what, p.returncode, code, p.stderr.strip()))
    first = p.stderr.split("\n")[0]
    if pattern not in first:
        fail("%s: %r lacks %r" % (what, first, pattern))
    if code == 1 and p.stderr.count("\n") != 1:
        fail("%s: more than one line: %r" % (what, p.stderr))
    print("refused (%s): %s" % (what, first))


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ddpt-predict-") as d:
        vocab_path = os.path.join(d, "vocab.txt")
        vocab_tokens = write_vocab(vocab_path)
        vocab = tokref.load_vocab(vocab_path)
        cls_ckpt = check_classify(exe, d, vocab_tokens, vocab)
        check_finetuned(exe, d, vocab_path, vocab_tokens, vocab, cls_ckpt)

        rng = np.random.default_rng(9)
        ner = [" ".join(str(rng.choice(WORDS + ["playing", "unwalkable", "London", "!"]))
                        for _ in range(int(rng.integers(1, 12)))) for _ in range(30)]
        ner[2] = " ".join(WORDS)  # longer than the positions: its last words are cut
        ner[3] = ""
        ner[4] = "john \x01 smith"  # a word without pieces is [UNK]
        check_tag(exe, d, vocab_tokens, vocab, LABELS_BIO, False, ner)
        cws = ["".join(str(rng.choice(CJK)) for _ in range(int(rng.integers(1, 15)))) for _ in range(30)]
        cws[1] = "我爱北京 天安门"
        cws[2] = "上海 is 中国的"
        cws[3] = "".join(CJK * 2)  # cut
        cws[4] = "   "
        tag_ckpt = check_tag(exe, d, vocab_tokens, vocab, LABELS_BMES, True, cws)

        # Refusals.
        pre = ref.BertForTokenClassification(ref.Config(vocab_size=len(vocab_tokens), **SHAPE), 2)
        pre.classifier = None
        pre_ckpt = os.path.join(d, "pretrain.h5")
        write_ckpt(pre_ckpt, pre, vocab_tokens, [], None)
        expect_fail(exe, ["predict", "--ckpt", pre_ckpt, "-"], "hello\n", 1,
                    "has no task head (classifier.weight): it is a pretraining checkpoint; use ddpt fill-mask",
                    "pretraining checkpoint")
        other = os.path.join(d, "other.txt")
        write_vocab(other, extra=["extra"])
        expect_fail(exe, ["predict", "--ckpt", cls_ckpt, "--vocab", other, "-"], "hello\n", 1,
                    "is not the vocab checkpoint", "vocab mismatch")
        expect_fail(exe, ["predict", "--ckpt", cls_ckpt, "--batch", "2", "-"], "good\nbad\nthe\ta\tb\n", 1,
                    "stdin:3: more than one TAB", "two TABs")
        expect_fail(exe, ["predict", "--ckpt", cls_ckpt, "-"], "good\t \n", 1, "stdin:1: empty text_b", "empty text_b")
        expect_fail(exe, ["fill-mask", "--ckpt", cls_ckpt, "the [MASK]"], None, 1, "use ddpt predict",
                    "fill-mask on a classifier")
        expect_fail(exe, ["predict", "--ckpt", tag_ckpt, "--seq-len", "4", "-"], "", 2, "--seq-len",
                    "--seq-len 4")
        expect_fail(exe, ["predict", "--ckpt", tag_ckpt, "--seq-len", str(MAX_POS + 1), "-"], "", 1,
                    "max_position_embeddings", "--seq-len past the positions")
        expect_fail(exe, ["predict", "-"], "", 2, "--ckpt", "no --ckpt")
    print("predict_parity: ok")


if __name__ == "__main__":
    main()
