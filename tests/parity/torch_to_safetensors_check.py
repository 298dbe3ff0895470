#!/usr/bin/python3
"""scripts/torch_to_safetensors.py turns a torch.save'd BERT into what
`ddpt import` reads, exactly. argv[1] is the ddpt binary.

a. A BertForPreTraining's state_dict (bert_reference.py: the decoder tied to
   the word embeddings and cls.predictions.bias, as HuggingFace's) plus an
   int64 position_ids buffer, torch.save'd as pytorch_model.bin beside
   config.json and vocab.txt: `ddpt import` refuses the directory naming the
   script; converted in place, model.safetensors (read by safetensors_io,
   from the format's spec) holds every tensor once (the two tied aliases
   dropped, as HuggingFace stores them), F32, bit-identical, position_ids
   I64; `ddpt import` gives /params equal to the state_dict exactly.
b. The same model in bfloat16, converted with --out DIR: F32 by default
   (exact widening), BF16 with --keep-dtype; config.json, vocab.txt and
   tokenizer_config.json copied; `ddpt import` of either gives the same
   /params, equal to the bf16 weights widened.
c. Shards listed by pytorch_model.bin.index.json become one model.safetensors.
d. Refused with one line on stderr, exit 1, nothing written: a directory
   without a .bin, a file that is not a torch.save, a pickle of something
   other than tensors, an existing model.safetensors (without --force).
"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_reference as ref  # noqa: E402
import safetensors_io as st  # noqa: E402
from harness import fail, run  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "torch_to_safetensors.py")
TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias"}
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + ["w%d" % i for i in range(35)]


def convert(*args):
    return run("/usr/bin/python3", SCRIPT, *args)


def reference_model(cfg, dtype):
    torch.manual_seed(3)
    model = ref.BertForPreTraining(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.3 * torch.randn_like(p))
    return model.to(dtype)


def model_dir(d, name, cfg):
    path = os.path.join(d, name)
    os.makedirs(path)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(dict(cfg.to_json(), architectures=["BertForPreTraining"], model_type="bert"), f)
    with open(os.path.join(path, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True}, f)
    return path


def bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def as_f32(t):
    return t.detach().float().numpy()


def expect_import(ddpt, src, out, want, what):
    """`ddpt import src` gives /params equal to want ({name: float32 array}) bit for bit."""
    run(ddpt, "import", src, "--out", out)
    with h5py.File(out, "r") as f:
        got = {k: v[()] for k, v in f["params"].items()}
    if set(got) != set(want):
        fail("%s: /params has %s, lacks %s" % (what, sorted(set(got) - set(want)), sorted(set(want) - set(got))))
    bad = [k for k in want if not bits_equal(got[k], want[k])]
    if bad:
        fail("%s: /params differ from the state_dict in %s" % (what, bad))
    return len(got)


def expect_file(path, state, dtype, what):
    """model.safetensors at path holds state without the tied aliases, floats
    as dtype, bit for bit; returns the stored names."""
    n, head, _ = st.header(path)
    if head.get("__metadata__") != {"format": "pt"} or (8 + n) % 8:
        fail("%s: __metadata__ %s, header length %d" % (what, head.get("__metadata__"), n))
    stored = {k: v["dtype"] for k, v in head.items() if k != "__metadata__"}
    want = set(state) - set(TIED)
    if set(stored) != want:
        fail("%s: stores %s, lacks %s (want each tensor once, tied aliases %s dropped)"
             % (what, sorted(set(stored) - want), sorted(want - set(stored)), sorted(TIED)))
    tensors = st.read(path)
    for k in want:
        t = state[k]
        kind = "I64" if t.dtype == torch.int64 else dtype
        values = t.numpy() if t.dtype == torch.int64 else as_f32(t)
        if stored[k] != kind or not bits_equal(tensors[k], values):
            fail("%s: %s stored as %s (want %s) or not bit-identical" % (what, k, stored[k], kind))
    return stored


def expect_refused(argv, what, out_paths):
    p = subprocess.run(argv, capture_output=True, text=True)
    lines = p.stderr.splitlines()
    if p.returncode != 1 or len(lines) != 1 or not lines[0].startswith("torch_to_safetensors: "):
        fail("%s: exit %d, stderr %r (want exit 1 and one line)" % (what, p.returncode, p.stderr))
    left = [x for x in out_paths if os.path.exists(x)]
    if left:
        fail("%s: the failed run left %s" % (what, left))
    print("refused, %s: %s" % (what, lines[0]))


def main():
    ddpt = sys.argv[1]
    cfg = ref.Config(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32)
    with tempfile.TemporaryDirectory(prefix="ddpt-torch2st-") as d:
        # a. float32, in place
        model = reference_model(cfg, torch.float32)
        state = model.state_dict()
        if any(state[alias].data_ptr() != state[source].data_ptr() for alias, source in TIED.items()):
            fail("the reference model's decoder is not tied: the test would not test de-duplication")
        state["bert.embeddings.position_ids"] = torch.arange(cfg.max_position_embeddings).unsqueeze(0)
        hf = model_dir(d, "hf", cfg)
        torch.save(state, os.path.join(hf, "pytorch_model.bin"))
        p = subprocess.run([ddpt, "import", hf, "--out", os.path.join(d, "refused.h5")], capture_output=True,
                           text=True)
        if p.returncode == 0 or "torch_to_safetensors.py" not in p.stderr:
            fail("ddpt import of a pytorch_model.bin directory: exit %d, %r (want a pointer to the script)"
                 % (p.returncode, p.stderr))
        said = convert(hf)
        stored = expect_file(os.path.join(hf, "model.safetensors"), state, "F32", "in place")
        params = {k: as_f32(v) for k, v in state.items() if k not in TIED and v.is_floating_point()}
        n = expect_import(ddpt, hf, os.path.join(d, "f32.h5"), params, "import f32")
        print("f32 in place: %d of %d state_dict entries stored (tied %s dropped), F32 and I64 position_ids "
              "bit-identical; ddpt import: %d /params = state_dict exactly\n  script: %s"
              % (len(stored), len(state), ", ".join(TIED), n, said.strip()))

        # b. bfloat16, --out, default and --keep-dtype
        half = reference_model(cfg, torch.bfloat16).state_dict()
        src = model_dir(d, "hf-bf16", cfg)
        torch.save(half, os.path.join(src, "pytorch_model.bin"))
        widened = {k: as_f32(v) for k, v in half.items() if k not in TIED}
        for flag, dtype in (([], "F32"), (["--keep-dtype"], "BF16")):
            out = os.path.join(d, "out-" + dtype)
            convert(src, "--out", out, *flag)
            for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
                if open(os.path.join(out, name), "rb").read() != open(os.path.join(src, name), "rb").read():
                    fail("--out %s: %s not copied" % (out, name))
            expect_file(os.path.join(out, "model.safetensors"), half, dtype, "bf16 " + " ".join(flag))
            expect_import(ddpt, out, os.path.join(d, "bf16-%s.h5" % dtype), widened, "import bf16 as " + dtype)
        if os.path.exists(os.path.join(src, "model.safetensors")):
            fail("--out wrote model.safetensors beside SRC too")
        print("bf16 --out: F32 by default, BF16 with --keep-dtype, config.json, vocab.txt, tokenizer_config.json "
              "copied; both import to the bf16 weights widened, exactly")

        # c. sharded .bin
        names = sorted(k for k in state if k not in TIED)
        sharded = model_dir(d, "hf-sharded", cfg)
        files = {"pytorch_model-00001-of-00002.bin": names[:len(names) // 2],
                 "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
        for f, part in files.items():
            torch.save({k: state[k] for k in part}, os.path.join(sharded, f))
        with open(os.path.join(sharded, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": {k: f for f, part in files.items() for k in part}}, f)
        convert(sharded)
        expect_file(os.path.join(sharded, "model.safetensors"), state, "F32", "sharded")
        expect_import(ddpt, sharded, os.path.join(d, "sharded.h5"), params, "import sharded")
        print("2 .bin shards + pytorch_model.bin.index.json: one model.safetensors; import = state_dict exactly")

        # d. refusals
        empty = model_dir(d, "no-bin", cfg)
        expect_refused(["/usr/bin/python3", SCRIPT, empty], "no pytorch_model.bin",
                       [os.path.join(empty, "model.safetensors")])
        junk = model_dir(d, "junk", cfg)
        with open(os.path.join(junk, "pytorch_model.bin"), "wb") as f:
            f.write(os.urandom(4096))
        expect_refused(["/usr/bin/python3", SCRIPT, junk], "random bytes", [os.path.join(junk, "model.safetensors")])
        other = model_dir(d, "not-tensors", cfg)
        torch.save({"bert.embeddings.word_embeddings.weight": torch.zeros(2, 2), "step": 3},
                   os.path.join(other, "pytorch_model.bin"))
        expect_refused(["/usr/bin/python3", SCRIPT, other], "a dict with an int",
                       [os.path.join(other, "model.safetensors")])
        before = open(os.path.join(hf, "model.safetensors"), "rb").read()
        expect_refused(["/usr/bin/python3", SCRIPT, hf], "existing model.safetensors", [])
        if open(os.path.join(hf, "model.safetensors"), "rb").read() != before:
            fail("a refused conversion changed the existing model.safetensors")
        if [f for d_, _, fs in os.walk(d) for f in fs if f.startswith(".model.safetensors")]:
            fail("a temporary file was left behind")
    print("torch_to_safetensors_check: ok")


if __name__ == "__main__":
    main()
