#!/usr/bin/python3
"""Models in and out of ddpt (`ddpt export`, `ddpt import`), checked with
readers and writers written here from the formats' public specs
(safetensors_io.py, tf_bundle_writer.py), not with ddpt's C code, and with
the PyTorch BERT of bert_reference.py. argv[1] is the ddpt binary.

0. the tools: safetensors_io rounds to BF16/F16 as torch does and reads back
   what it wrote; the CRC32C gives RFC 3720's check values.
a. export: a checkpoint ddpt trained for a few steps (tiny model, NSP head)
   exported as f32 is read by safetensors_io: bit-identical to the
   checkpoint's /params, data 8-byte aligned, __metadata__ {"format": "pt"};
   config.json, tokenizer_config.json, special_tokens_map.json and vocab.txt
   hold what HuggingFace needs; the tensors load into BertForPreTraining
   (and, exported --arch BertForMaskedLM, into BertForMaskedLM) with
   load_state_dict(strict=True) once the two tied keys HuggingFace's
   tie_weights provides are added back; PyTorch's float64 softmax matches
   `ddpt fill-mask --json` within 1e-5; bf16 and f16 exports hold the f32
   export rounded to nearest even, exactly; importing the f32 export gives
   back the checkpoint's /params bit for bit.
b. import: a random PyTorch BERT written by safetensors_io as F32, BF16
   (plus an I64 position_ids buffer) and F16 (given as the .safetensors file)
   HuggingFace directories, once with the legacy LayerNorm.gamma/beta names
   and a separate decoder weight, once sharded with
   model.safetensors.index.json: `ddpt import` records exactly the stored
   values, the config and the vocab, and `ddpt fill-mask` (vocab from the
   checkpoint) matches PyTorch with the weights as stored within 1e-5. A
   BertModel without the `bert.` prefix imports as bert.* tensors.
c. TF: the same BERT written by tf_bundle_writer as Google's release (two
   data shards, Adam slots, global_step): `ddpt import` gives /params equal
   to the PyTorch weights exactly (kernels transposed back) and says it
   skipped the slots and global_step; with --with-optimizer the slots become
   /optim/m and /optim/v; import -> export -> import is bit-identical.
d. bad files (truncated, overlapping data_offsets, unknown dtype, bad table
   magic, tensor crc mismatch): `ddpt import` exits non-zero with one line on
   stderr naming the file (and the tensor), and writes nothing.
"""
import configparser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
import tf_bundle_writer as tfw  # noqa: E402
from harness import fail, run  # noqa: E402

TOL = 1e-5
# HuggingFace stores these once: the decoder's weight is the word embeddings,
# its bias is cls.predictions.bias (BertLMPredictionHead ties them).
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SENTENCES = ["the cat sat on the mat", "a dog ran in the park", "my bird flew over her house",
             "his fish swam under our bridge", "your horse jumped across their field",
             "one mouse hid behind that door"]
QUERIES = ["the cat [MASK] on the mat", "a [MASK] ran in the [MASK]", "[MASK] bird flew over her house"]
HF_FILES = ["model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"]
CONFIG_KEYS = ["architectures", "model_type", "hidden_act", "layer_norm_eps", "type_vocab_size", "vocab_size",
               "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
               "max_position_embeddings", "hidden_dropout_prob", "attention_probs_dropout_prob",
               "initializer_range", "pad_token_id"]


def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def h5_params(path, group="params"):
    with h5py.File(path, "r") as f:
        return {k: v[()] for k, v in f[group].items()} if group in f else None


def h5_model(path):
    """The [model] section of the checkpoint's config attribute, and its vocab attribute (or None)."""
    with h5py.File(path, "r") as f:
        ini = configparser.ConfigParser(interpolation=None)
        ini.read_string(f.attrs["config"].decode())
        vocab = f.attrs["vocab"].decode() if "vocab" in f.attrs else None
    return ini["model"], vocab


def config_of(m):
    """bert_reference.Config of a mapping with HuggingFace's keys (config.json or [model])."""
    return ref.Config(**{k: (float if "prob" in k or k == "layer_norm_eps" else int)(m[k]) for k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "max_position_embeddings", "type_vocab_size", "hidden_dropout_prob", "attention_probs_dropout_prob",
        "layer_norm_eps")})


def load_strict(cls, cfg, tensors):
    """cls(cfg) in float64 with the tensors loaded by load_state_dict(strict=True),
    after adding back the tied keys as HuggingFace's tie_weights has them: the
    very tensors of the embeddings and of cls.predictions.bias."""
    model = cls(cfg)
    state = {k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}
    for tied, source in TIED.items():
        if tied in state:
            fail("%s is stored; HuggingFace stores it once, as %s" % (tied, source))
        state[tied] = state[source]
    model.load_state_dict(state, strict=True)
    head = model.cls.predictions
    if head.decoder.weight is not model.bert.embeddings.word_embeddings.weight or head.decoder.bias is not head.bias:
        fail("the decoder is no longer tied after loading")
    return model.double().eval()


def fill_mask(ddpt, ckpt, vocab_file, model, vocab, what):
    """Compares `ddpt fill-mask --json --top-k 5` on ckpt with model's float64
    softmax for QUERIES; returns (masks compared, max |dp|)."""
    worst, masks = 0.0, 0
    for q in QUERIES:
        out = json.loads(run(ddpt, "fill-mask", "--ckpt", ckpt, *(["--vocab", vocab_file] if vocab_file else []),
                             "--json", "--top-k", "5", q))
        tokens = ["[CLS]"] + q.split() + ["[SEP]"]
        if out["tokens"] != tokens:
            fail("%s: %r: ddpt tokenized %s, want %s" % (what, q, out["tokens"], tokens))
        ids = torch.tensor([[vocab.index(t) for t in tokens]])
        with torch.no_grad():
            x, _ = model.bert(ids, torch.zeros_like(ids), torch.ones_like(ids))
            probs = torch.softmax(model.cls.predictions(x)[0], dim=-1).numpy()
        positions = [i for i, t in enumerate(tokens) if t == "[MASK]"]
        if [m["position"] for m in out["masks"]] != positions:
            fail("%s: %r: mask positions %s, want %s" % (what, q, [m["position"] for m in out["masks"]], positions))
        for m in out["masks"]:
            p = probs[m["position"]]
            top = m["predictions"]
            if len(top) != 5 or p[top[0]["id"]] < p.max() - TOL:
                fail("%s: %r at %d: ddpt's top-1 %s has p %.7f in PyTorch, whose top-1 %d has %.7f"
                     % (what, q, m["position"], top[0], p[top[0]["id"]], int(np.argmax(p)), p.max()))
            for t in top:
                d = abs(t["prob"] - p[t["id"]])
                worst = max(worst, d)
                if d > TOL or vocab[t["id"]] != t["token"]:
                    fail("%s: %r at %d: %s (id %d) has p %.8f in ddpt, %.8f in PyTorch"
                         % (what, q, m["position"], t["token"], t["id"], t["prob"], p[t["id"]]))
            masks += 1
    return masks, worst


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)


def train(ddpt, d, vocab_file):
    """A checkpoint ddpt trained for 100 steps of a tiny BERT with the NSP head; its path."""
    text = os.path.join(d, "text.txt")
    write_text(text, "".join("\n".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(3)) + "\n\n"
                             for i in range(200)))
    corpus, run_dir = os.path.join(d, "corpus"), os.path.join(d, "run")
    run(ddpt, "shard", "--vocab", vocab_file, "--out", corpus, "--shards", "1", "--seq-len", "16",
        "--format", "docs", "--seed", "1", "--nsp", text)
    ini = os.path.join(d, "tiny.ini")
    write_text(ini, "[model]\nhidden_size = 32\nnum_hidden_layers = 2\nnum_attention_heads = 4\n"
                    "intermediate_size = 64\nmax_position_embeddings = 32\n")
    run(ddpt, "train", ini, "--run-dir", run_dir, "--threads", "1", "--set", "data.corpus=" + corpus,
        "--set", "train.steps=100", "--set", "train.batch_size=16", "--set", "optim.lr=3e-3",
        "--set", "schedule.warmup_steps=5", "--set", "log.eval_every=0", "--set", "checkpoint.every=0")
    return os.path.join(run_dir, open(os.path.join(run_dir, "LATEST")).read().strip())


def check_export_dir(hf, ckpt, arch, vocab_text):
    """The files of an f32 export; its tensors."""
    for name in HF_FILES:
        if not os.path.isfile(os.path.join(hf, name)):
            fail("%s: no %s" % (hf, name))
    path = os.path.join(hf, "model.safetensors")
    n, head, _ = st.header(path)
    if (8 + n) % 8 or head.get("__metadata__") != {"format": "pt"}:
        fail("%s: header length %d (data not 8-byte aligned) or __metadata__ %s" % (path, n, head.get("__metadata__")))
    if {t["dtype"] for k, t in head.items() if k != "__metadata__"} != {"F32"}:
        fail("%s: dtypes other than F32 in an f32 export" % path)
    tensors = st.read(path)
    cfg = json.load(open(os.path.join(hf, "config.json")))
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        fail("%s/config.json lacks %s" % (hf, missing))
    model, _ = h5_model(ckpt)
    want = {"architectures": [arch], "model_type": "bert", "hidden_act": "gelu", "pad_token_id": 0}
    want.update({k: int(model[k]) for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                            "intermediate_size", "max_position_embeddings", "type_vocab_size")})
    for k, v in want.items():
        if cfg[k] != v:
            fail("%s/config.json: %s is %r, want %r" % (hf, k, cfg[k], v))
    for k in ("layer_norm_eps", "hidden_dropout_prob", "attention_probs_dropout_prob"):
        if np.float32(cfg[k]) != np.float32(float(model[k])):
            fail("%s/config.json: %s is %r, the checkpoint's %s" % (hf, k, cfg[k], model[k]))
    tok = json.load(open(os.path.join(hf, "tokenizer_config.json")))
    if tok.get("do_lower_case") is not True:
        fail("%s/tokenizer_config.json: do_lower_case %r for an uncased corpus" % (hf, tok.get("do_lower_case")))
    special = {k: v["content"] if isinstance(v, dict) else v  # HF writes a token or an AddedToken's dict
               for k, v in json.load(open(os.path.join(hf, "special_tokens_map.json"))).items()}
    want_special = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                    "mask_token": "[MASK]"}
    if special != want_special:
        fail("%s/special_tokens_map.json is %s, want %s" % (hf, special, want_special))
    if open(os.path.join(hf, "vocab.txt")).read() != vocab_text:
        fail("%s/vocab.txt differs from the corpus vocab" % hf)
    return tensors, cfg


def part_export(ddpt, d, vocab_file, vocab, vocab_text):
    ckpt = train(ddpt, d, vocab_file)
    params = h5_params(ckpt)
    hf = os.path.join(d, "export-f32")
    run(ddpt, "export", ckpt, "--out", hf, "--vocab", vocab_file)
    tensors, cfg = check_export_dir(hf, ckpt, "BertForPreTraining", vocab_text)
    if set(tensors) != set(params) or not all(bits_equal(tensors[k], params[k]) for k in params):
        fail("%s: tensors %s differ from the checkpoint's /params %s (names or bits)"
             % (hf, sorted(set(tensors) ^ set(params)), len(params)))
    print("export f32: %d tensors bit-identical to /params; config.json, tokenizer files and vocab.txt as HF's"
          % len(tensors))
    model = load_strict(ref.BertForPreTraining, config_of(cfg), tensors)
    masks, worst = fill_mask(ddpt, ckpt, vocab_file, model, vocab, "export f32")
    print("export f32 -> BertForPreTraining, load_state_dict(strict=True) with %s re-added as HF ties them; "
          "%d masks vs ddpt fill-mask: max |dp| %.2e"
          % (", ".join("%s = %s" % kv for kv in TIED.items()), masks, worst))

    mlm_dir = os.path.join(d, "export-mlm")
    run(ddpt, "export", ckpt, "--out", mlm_dir, "--vocab", vocab_file, "--arch", "BertForMaskedLM")
    mlm, mlm_cfg = check_export_dir(mlm_dir, ckpt, "BertForMaskedLM", vocab_text)
    dropped = set(tensors) - set(mlm)
    if set(mlm) - set(tensors) or {k for k in dropped if not k.startswith(("bert.pooler.", "cls.seq_relationship."))}:
        fail("--arch BertForMaskedLM: added %s, dropped %s (want only the pooler and NSP head dropped)"
             % (sorted(set(mlm) - set(tensors)), sorted(dropped)))
    masks, worst = fill_mask(ddpt, ckpt, vocab_file, load_strict(ref.BertForMaskedLM, config_of(mlm_cfg), mlm),
                             vocab, "export BertForMaskedLM")
    print("export BertForMaskedLM: %d tensors (no %s), strict load; %d masks: max |dp| %.2e"
          % (len(mlm), ", ".join(sorted(dropped)), masks, worst))

    for dtype in ("BF16", "F16"):
        out = os.path.join(d, "export-" + dtype.lower())
        run(ddpt, "export", ckpt, "--out", out, "--vocab", vocab_file, "--dtype", dtype.lower())
        path = os.path.join(out, "model.safetensors")
        _, head, _ = st.header(path)
        kinds = {t["dtype"] for k, t in head.items() if k != "__metadata__"}
        if kinds != {dtype}:
            fail("%s: dtypes %s, want %s" % (path, kinds, dtype))
        got = st.read(path)
        bad = [k for k in tensors if k not in got or not bits_equal(got[k], st.rounded(tensors[k], dtype))]
        if bad or set(got) != set(tensors):
            fail("%s: %s not the f32 export rounded to nearest even" % (path, bad or sorted(set(got) ^ set(tensors))))
        print("export %s: %d tensors equal the f32 export rounded to nearest even, bit for bit (max |rounding| %.2e)"
              % (dtype, len(got), max(float(np.abs(got[k] - tensors[k]).max()) for k in got)))

    back = os.path.join(d, "export-f32.h5")
    run(ddpt, "import", hf, "--out", back)
    again = h5_params(back)
    if set(again) != set(params) or not all(bits_equal(again[k], params[k]) for k in params):
        fail("ddpt -> HF dir -> import: /params differ from the original (%s)" % sorted(set(again) ^ set(params)))
    print("ddpt -> HF dir -> ddpt import: /params bit-identical (%d tensors)" % len(params))


def random_bert(cfg, seed):
    """HF-named weights of a BertForPreTraining drawn wide
    (ref.spread_weights), without the two tied keys HuggingFace stores once."""
    weights = ref.spread_weights(ref.BertForPreTraining(cfg), seed)
    return {k: v for k, v in weights.items() if k not in TIED}


def hf_config(cfg, arch):
    c = dict(cfg.to_json(), architectures=[arch], model_type="bert", initializer_range=0.02, pad_token_id=0)
    return json.dumps(c, indent=2)


def write_hf(directory, files, cfg, arch, vocab_text):
    """A HuggingFace directory: {file name: {tensor: array}} written with
    safetensors_io in the dtype the file name's part before ':' gives, and
    config.json, vocab.txt, tokenizer_config.json."""
    os.makedirs(directory)
    for spec, tensors in files.items():
        name, dtype = spec.split(":")
        st.write(os.path.join(directory, name), tensors, dtype)
    write_text(os.path.join(directory, "config.json"), hf_config(cfg, arch))
    write_text(os.path.join(directory, "vocab.txt"), vocab_text)
    write_text(os.path.join(directory, "tokenizer_config.json"), json.dumps({"do_lower_case": True}))


def expect_params(path, want, what):
    """/params of the checkpoint at path are exactly want; max |difference| from want is 0."""
    got = h5_params(path)
    if set(got) != set(want):
        fail("%s: /params has %s, lacks %s" % (what, sorted(set(got) - set(want)), sorted(set(want) - set(got))))
    bad = [k for k in want if not bits_equal(got[k], np.asarray(want[k], dtype=np.float32))]
    if bad:
        fail("%s: /params differ from the stored values in %s" % (what, bad))


def part_import(ddpt, d, vocab, vocab_text):
    cfg = ref.Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32)
    weights = random_bert(cfg, 7)
    names = list(weights)
    half = len(names) // 2
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in weights.items()}
    legacy["cls.predictions.decoder.weight"] = weights["bert.embeddings.word_embeddings.weight"]
    position_ids = np.arange(cfg.max_position_embeddings, dtype=np.int64)[None, :]
    cases = [  # name, files, dtype as stored, what the file is given as
        ("f32", {"model.safetensors:F32": weights}, "F32", "dir"),
        ("bf16", {"model.safetensors:BF16": dict(weights, **{"bert.embeddings.position_ids": position_ids})},
         "BF16", "dir"),
        ("f16", {"model.safetensors:F16": weights}, "F16", "file"),
        ("legacy", {"model.safetensors:F32": legacy}, "F32", "dir"),
        ("sharded", {"model-00001-of-00002.safetensors:F32": {k: weights[k] for k in names[:half]},
                     "model-00002-of-00002.safetensors:F32": {k: weights[k] for k in names[half:]}}, "F32", "dir"),
    ]
    for name, files, dtype, given in cases:
        hf = os.path.join(d, "hf-" + name)
        write_hf(hf, files, cfg, "BertForPreTraining", vocab_text)
        if name == "sharded":
            weight_map = {k: f.split(":")[0] for f, ts in files.items() for k in ts}
            write_text(os.path.join(hf, "model.safetensors.index.json"), json.dumps(
                {"metadata": {"total_size": 4 * sum(v.size for v in weights.values())}, "weight_map": weight_map}))
        out = os.path.join(d, "hf-%s.h5" % name)
        run(ddpt, "import", os.path.join(hf, "model.safetensors") if given == "file" else hf, "--out", out)
        stored = {k: st.rounded(v, dtype) for k, v in weights.items()}
        expect_params(out, stored, "import " + name)
        model, recorded_vocab = h5_model(out)
        if recorded_vocab != vocab_text:
            fail("import %s: the checkpoint's vocab attribute is not vocab.txt" % name)
        recorded = config_of(model).__dict__
        if any(np.float32(recorded[k]) != np.float32(v) for k, v in cfg.__dict__.items()):
            fail("import %s: [model] %s, want %s" % (name, recorded, cfg.__dict__))
        torch_model = load_strict(ref.BertForPreTraining, cfg, stored)
        masks, worst = fill_mask(ddpt, out, None, torch_model, vocab, "import " + name)
        print("import %-7s (%s %s%s): /params = the stored values exactly, config and vocab recorded; "
              "%d masks vs PyTorch: max |dp| %.2e" % (name, dtype, "file" if given == "file" else "dir",
                                                    {"legacy": ", LayerNorm.gamma/beta + decoder.weight",
                                                     "bf16": ", + I64 position_ids",
                                                     "sharded": ", 2 files + index.json"}.get(name, ""),
                                                    masks, worst))

    # BertModel: no prefix, no heads, a position_ids buffer. Its encoder must
    # come in exactly; its pooler only with a next-sentence head, which it
    # lacks: kept exactly or reported unused. The heads are fresh (not compared).
    base = {k[len("bert."):]: v for k, v in weights.items() if k.startswith("bert.")}
    base["embeddings.position_ids"] = position_ids
    hf = os.path.join(d, "hf-bertmodel")
    write_hf(hf, {"model.safetensors:F32": base}, cfg, "BertModel", vocab_text)
    out = os.path.join(d, "hf-bertmodel.h5")
    said = run(ddpt, "import", hf, "--out", out)
    got = h5_params(out)
    want = {k: v for k, v in weights.items() if k.startswith("bert.")}
    pooler = [k for k in want if k.startswith("bert.pooler.")]
    if not all(k in got for k in pooler) and not all(k[len("bert."):] in said for k in pooler):
        fail("import BertModel: the pooler is neither imported nor reported unused:\n" + said)
    bad = [k for k in want if (k in got or k not in pooler) and (k not in got or not bits_equal(got[k], want[k]))]
    if bad or any(k.startswith("bert.") and k not in want for k in got):
        fail("import BertModel: /params differ in %s (or hold more: %s)" % (bad, sorted(set(got) - set(want))))
    print("import BertModel (no bert. prefix, I64 position_ids): %d tensors as bert.* exactly, the pooler %s; "
          "position_ids not a parameter" % (len([k for k in want if k in got]),
                                           "imported" if pooler[0] in got else "reported unused"))
    finetune_from_hf(ddpt, d, hf, want)
    return cfg, weights


def finetune_from_hf(ddpt, d, hf, want):
    """`ddpt finetune --init` takes the HF directory itself and, as
    load_state_dict(strict=False) would, loads every encoder tensor and the
    pooler of a BertModel (which a pretraining layout without the NSP head
    has no place for) and creates the classifier: with lr 1e-30, the first
    checkpoint's bert.* are the directory's exactly."""
    tsv = os.path.join(d, "topics.tsv")
    write_text(tsv, "".join("%s\t%s\n" % ("animal" if i % 2 else "place", SENTENCES[i % len(SENTENCES)])
                            for i in range(60)))
    corpus = os.path.join(d, "topics")
    run(ddpt, "shard", "--task", "classify", "--vocab", os.path.join(hf, "vocab.txt"), "--out", corpus,
        "--shards", "1", "--seq-len", "16", tsv)
    ini = os.path.join(d, "ft.ini")
    write_text(ini, "[optim]\nlr = 1e-30\n")  # too small to move a float32 weight of this size
    run_dir = os.path.join(d, "ft-run")
    p = subprocess.run([ddpt, "finetune", ini, "--init", hf, "--run-dir", run_dir, "--threads", "1",
                        "--set", "data.corpus=" + corpus, "--set", "train.steps=1", "--set", "train.batch_size=4",
                        "--set", "checkpoint.every=1", "--set", "log.eval_every=0"], capture_output=True, text=True)
    said = p.stdout + p.stderr
    if p.returncode != 0 or "new: classifier.weight [2, 32]" not in said:
        fail("finetune --init HF dir: exit %d, no 'new: classifier.weight [2, 32]' in:\n%s" % (p.returncode, said))
    got = h5_params(os.path.join(run_dir, "ckpt-00000001.h5"))
    bad = [k for k in want if k not in got or not bits_equal(got[k], want[k])]
    if bad:
        fail("finetune --init HF dir: %s not loaded exactly" % bad)
    print("finetune --init HF BertModel dir: %d encoder and pooler tensors loaded exactly, classifier new"
          % len(want))


def part_tf(ddpt, d, cfg, weights, vocab):
    tf_dir = os.path.join(d, "tf")
    os.makedirs(tf_dir)
    prefix, tensors, stats, _ = tfw.write_google_bert(tf_dir, weights, cfg, vocab, num_shards=2,
                                                      adam_rng=np.random.default_rng(3), global_step=1000,
                                                      block_size=2048)
    slots = sorted(k for k in tensors if k.endswith(("/adam_m", "/adam_v")))
    a = os.path.join(d, "a.h5")
    p = subprocess.run([ddpt, "import", prefix, "--out", a], capture_output=True, text=True)
    if p.returncode != 0:
        fail("ddpt import %s exited %d: %s%s" % (prefix, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    said = (p.stdout + p.stderr).lower()
    if "global_step" not in said or "adam" not in said:
        fail("ddpt import %s does not say it skipped the Adam slots and global_step:\n%s" % (prefix, said))
    expect_params(a, weights, "TF import")
    if h5_params(a, "optim/m") is not None:
        fail("TF import without --with-optimizer wrote /optim/m")
    print("TF bundle (%d tensors, 2 data files, %d data blocks with %d restart points, %d Adam slots, global_step): "
          "import /params = PyTorch weights exactly, slots and global_step reported skipped"
          % (len(tensors), stats[0], stats[1], len(slots)))

    opt = os.path.join(d, "a-optim.h5")
    run(ddpt, "import", prefix, "--out", opt, "--with-optimizer")
    for group, slot in (("optim/m", "adam_m"), ("optim/v", "adam_v")):
        got = h5_params(opt, group)
        for hf_name, w in weights.items():
            tf_name = next(iter(tfw.hf_to_tf({hf_name: w})))
            want = tensors[tf_name + "/" + slot]
            if tf_name.endswith("/kernel"):
                want = want.T
            if got is None or hf_name not in got or not bits_equal(got[hf_name], np.ascontiguousarray(want)):
                fail("--with-optimizer: %s/%s is not %s/%s" % (group, hf_name, tf_name, slot))
    print("TF import --with-optimizer: /optim/m and /optim/v = adam_m and adam_v exactly (kernels transposed)")

    hf, b = os.path.join(d, "tf-export"), os.path.join(d, "b.h5")
    run(ddpt, "export", a, "--out", hf)
    run(ddpt, "import", hf, "--out", b)
    pa, pb = h5_params(a), h5_params(b)
    if set(pa) != set(pb) or not all(bits_equal(pa[k], pb[k]) for k in pa):
        fail("TF import -> export -> import: /params of a.h5 and b.h5 differ")
    print("TF import -> export -> import: /params of a.h5 and b.h5 bit-identical (%d tensors)" % len(pa))


def rewrite_header(src, dst, edit):
    """Copy the safetensors file src to dst with its header dict changed by edit."""
    data = open(src, "rb").read()
    (n,) = struct.unpack_from("<Q", data, 0)
    head = json.loads(data[8:8 + n])
    edit(head)
    text = json.dumps(head).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[8 + n:])


def expect_refused(ddpt, d, what, src, names, tensor_names):
    """`ddpt import src` fails with one stderr line holding one of names (the
    file) and, if tensor_names, one of those; nothing is written."""
    out_dir = os.path.join(d, "bad-out-" + what.replace(" ", "-"))
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "x.h5")
    p = subprocess.run([ddpt, "import", src, "--out", out], capture_output=True, text=True)
    lines = p.stderr.splitlines()
    if p.returncode == 0:
        fail("%s: ddpt import succeeded" % what)
    if len(lines) != 1:
        fail("%s: %d lines on stderr, want 1:\n%s" % (what, len(lines), p.stderr))
    if not any(n in lines[0] for n in names) or (tensor_names and not any(t in lines[0] for t in tensor_names)):
        fail("%s: '%s' does not name %s%s" % (what, lines[0], " or ".join(names),
                                              " and " + " or ".join(tensor_names) if tensor_names else ""))
    if os.listdir(out_dir):
        fail("%s: the failed import left %s" % (what, os.listdir(out_dir)))
    print("refused, %-22s exit %d: %s" % (what + ",", p.returncode, lines[0]))


def part_bad(ddpt, d, cfg, weights, vocab, vocab_text):
    good = os.path.join(d, "hf-f32")
    names = list(weights)

    def damaged(what, change):
        hf = os.path.join(d, "bad-" + what.replace(" ", "-"))
        shutil.copytree(good, hf)
        change(os.path.join(hf, "model.safetensors"))
        return hf

    def truncate(path):
        data = open(path, "rb").read()
        open(path, "wb").write(data[:-100])

    expect_refused(ddpt, d, "truncated", damaged("truncated", truncate), ["model.safetensors"], None)

    # Two tensors of one shape: the second's data_offsets moved onto the first's.
    first, second = "bert.encoder.layer.0.attention.self.query.bias", "bert.encoder.layer.0.attention.self.key.bias"

    def overlap(path):
        rewrite_header(path, path, lambda h: h[second].update(data_offsets=h[first]["data_offsets"]))
    expect_refused(ddpt, d, "overlapping offsets", damaged("overlap", overlap), ["model.safetensors"],
                   [first, second])

    unknown = names[3]

    def bad_dtype(path):
        rewrite_header(path, path, lambda h: h[unknown].update(dtype="Q7"))
    expect_refused(ddpt, d, "unknown dtype", damaged("dtype", bad_dtype), ["model.safetensors"], [unknown])

    def tf_copy(what):
        tf_dir = os.path.join(d, "bad-tf-" + what)
        os.makedirs(tf_dir)
        return tfw.write_google_bert(tf_dir, weights, cfg, vocab, num_shards=2, block_size=2048)

    prefix, _, _, _ = tf_copy("magic")
    with open(prefix + ".index", "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))
    expect_refused(ddpt, d, "bad index magic", prefix, ["bert_model.ckpt.index"], None)

    prefix, _, _, where = tf_copy("crc")
    victim = "bert/encoder/layer_1/attention/self/key/kernel"
    path, offset, size = where[victim]
    with open(path, "r+b") as f:
        f.seek(offset + size // 2)
        byte = f.read(1)
        f.seek(offset + size // 2)
        f.write(bytes([byte[0] ^ 0x01]))
    expect_refused(ddpt, d, "tensor crc mismatch", prefix, [os.path.basename(path), "bert_model.ckpt"],
                   [victim, "bert.encoder.layer.1.attention.self.key.weight"])


def part_tools(d):
    """The Python side first: safetensors_io's write -> read is exact in each
    dtype and rounds as torch's .to(torch.bfloat16) / .to(torch.float16) do
    (ties, overflow and subnormals included), and tf_bundle_writer's CRC32C
    gives RFC 3720's check values."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3997, generator=g) * torch.exp(4 * torch.randn(3997, generator=g))
    x = torch.cat([x, torch.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 3.4e38, 65520.0, 2 ** -25, 1e-40])])
    tensors = {"x": x.view(-1, 7), "ids": torch.arange(9).view(1, 9)}
    for dtype, torch_dtype in (("F32", torch.float32), ("BF16", torch.bfloat16), ("F16", torch.float16)):
        path = os.path.join(d, "tools-%s.safetensors" % dtype)
        st.write(path, tensors, dtype)
        back = st.read(path)
        if not bits_equal(back["x"], x.to(torch_dtype).float().view(-1, 7).numpy()) or \
                not bits_equal(back["ids"], tensors["ids"].numpy()):
            fail("safetensors_io: %s write -> read is not torch's rounding" % dtype)
    if tfw.crc32c(b"\0" * 32) != 0x8A9136AA or tfw.crc32c(bytes(range(32))) != 0x46DD794E:
        fail("tf_bundle_writer.crc32c fails RFC 3720's check values")
    print("tools: safetensors_io F32/BF16/F16 write -> read equals torch's rounding on %d values; CRC32C per RFC 3720"
          % x.numel())


def part_tasks(ddpt, d, vocab, vocab_text):
    """Fine-tuned models: a BertForSequenceClassification directory imports
    as a classify model (labels from id2label, /params exact) and exports
    back with id2label/label2id, loading strictly into the PyTorch class,
    bit-identical after a second import; a tagger with a CRF exports as
    BertForTokenClassification with the CRF in crf.safetensors."""
    cfg = ref.Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32)
    labels = ["neg", "neu", "pos"]
    weights = ref.spread_weights(ref.BertForSequenceClassification(cfg, 3), 11)
    hf = os.path.join(d, "hf-classify")
    write_hf(hf, {"model.safetensors:F32": weights}, cfg, "BertForSequenceClassification", vocab_text)
    c = json.loads(open(os.path.join(hf, "config.json")).read())
    c.update(id2label={str(i): n for i, n in enumerate(labels)}, label2id={n: i for i, n in enumerate(labels)})
    write_text(os.path.join(hf, "config.json"), json.dumps(c))
    a = os.path.join(d, "classify-a.h5")
    run(ddpt, "import", hf, "--out", a)
    expect_params(a, weights, "import BertForSequenceClassification")
    model, _ = h5_model(a)
    with h5py.File(a, "r") as f:
        got = json.loads(f.attrs["labels"].decode())
    if model["task"] != "classify" or model["num_labels"] != "3" or got != labels:
        fail("classifier import: task %s, num_labels %s, labels %s" % (model["task"], model["num_labels"], got))
    out = os.path.join(d, "hf-classify-out")
    run(ddpt, "export", a, "--out", out)
    conf = json.loads(open(os.path.join(out, "config.json")).read())
    if (conf["architectures"] != ["BertForSequenceClassification"] or conf["id2label"] != c["id2label"]
            or conf["label2id"] != c["label2id"]):
        fail("classifier export: config.json says %s, %s, %s" % (conf["architectures"], conf.get("id2label"),
                                                                   conf.get("label2id")))
    stored = st.read(os.path.join(out, "model.safetensors"))
    ref.BertForSequenceClassification(cfg, 3).load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in stored.items()}, strict=True)
    b = os.path.join(d, "classify-b.h5")
    run(ddpt, "import", out, "--out", b)
    expect_params(b, weights, "classifier import -> export -> import")
    print("BertForSequenceClassification: import (task, labels from id2label) -> export (id2label, label2id) -> "
          "strict load in PyTorch -> import: /params bit-identical (%d tensors)" % len(weights))

    tagger = ref.spread_weights(ref.BertForTokenClassification(cfg, 4, crf=True), 12)
    plain = {k: v for k, v in tagger.items() if not k.startswith("crf.")}
    hf = os.path.join(d, "hf-tag")
    write_hf(hf, {"model.safetensors:F32": plain}, cfg, "BertForTokenClassification", vocab_text)
    c = json.loads(open(os.path.join(hf, "config.json")).read())
    c.update(num_labels=4)  # no id2label: HF's LABEL_i names
    write_text(os.path.join(hf, "config.json"), json.dumps(c))
    t = os.path.join(d, "tag.h5")
    run(ddpt, "import", hf, "--out", t)
    with h5py.File(t, "r+") as f:  # make it a CRF tagger, as ddpt finetune would
        f.attrs["config"] = np.bytes_(f.attrs["config"].decode().replace("crf = false", "crf = true").encode())
        for k, v in tagger.items():
            if k.startswith("crf."):
                f.create_dataset("params/" + k, data=v, fletcher32=True, chunks=v.shape)
    out = os.path.join(d, "hf-tag-out")
    run(ddpt, "export", t, "--out", out)
    conf = json.loads(open(os.path.join(out, "config.json")).read())
    if conf["architectures"] != ["BertForTokenClassification"] or \
            conf["id2label"] != {str(i): "LABEL_%d" % i for i in range(4)}:
        fail("tagger export: config.json says %s, %s" % (conf["architectures"], conf.get("id2label")))
    stored = st.read(os.path.join(out, "model.safetensors"))
    ref.BertForTokenClassification(cfg, 4).load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in stored.items()}, strict=True)
    crf = st.read(os.path.join(out, "crf.safetensors"))
    if sorted(crf) != sorted(k for k in tagger if k.startswith("crf.")) or \
            not all(bits_equal(crf[k], tagger[k]) for k in crf):
        fail("tagger export: crf.safetensors holds %s, not the CRF's tensors exactly" % sorted(crf))
    print("BertForTokenClassification + CRF: export loads strictly in PyTorch; crf.safetensors holds %s exactly"
          % ", ".join(sorted(crf)))


def main():
    ddpt = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="ddpt-interchange-") as d:
        words = sorted({w for s in SENTENCES for w in s.split()})
        vocab = SPECIAL + words
        vocab_text = "\n".join(vocab) + "\n"
        vocab_file = os.path.join(d, "vocab.txt")
        write_text(vocab_file, vocab_text)
        part_tools(d)
        part_export(ddpt, d, vocab_file, vocab, vocab_text)
        cfg, weights = part_import(ddpt, d, vocab, vocab_text)
        part_tf(ddpt, d, cfg, weights, vocab)
        part_bad(ddpt, d, cfg, weights, vocab, vocab_text)
        part_tasks(ddpt, d, vocab, vocab_text)
    print("interchange_check: ok")


if __name__ == "__main__":
    main()
