#!/usr/bin/python3
"""Runs every fenced block of README.md, so the user guide cannot rot.

usage: tests/readme_blocks.py DDPT MPIRUN [README]

A block's info string is `LANG [ROLE]`; GitHub colours by LANG, this test
acts on ROLE (a block whose role it does not know fails the test, so a new
block cannot escape):
  sh                    run with bash -eo pipefail, in README order, in one
                        work directory, so later blocks use what earlier
                        ones made (vocab.txt, corpus/, run-small/ ...)
  sh ci                 scripts/quickstart.sh and scripts/test.sh: CI runs
                        them (.ci/run runs scripts/test.sh, which runs every
                        test, this one included); here only checked to
                        exist and be executable
  text output           what a command prints; not run
  ini FILE              written to FILE before the blocks after it run
  text hostfile         written to `hostfile` with every host name replaced
                        by localhost, so the mpirun --hostfile command runs
                        for real on this machine
  bash slurm            a Slurm batch script: SYNTAX-CHECKED ONLY (bash -n);
                        there is no Slurm here
  tsv|json classify,    a sample of a labelled format: sharded with
  text tag              `ddpt shard --task classify|tag`, which must accept it
  python                run with /usr/bin/python3 in the work directory
  python needs-transformers
                        run when transformers imports; else SYNTAX-CHECKED
                        ONLY (py_compile), and the test says so
and every message quoted in the Troubleshooting section must be printed by
the command PROVOKE gives for it.

What runs is the command shown, in a work directory that a prelude fills
with the README's names, made small: my-text/ (five English fortune files,
a fortune per line), my-text-zh/ (Chinese fortunes), train.tsv (fortunes
labelled by file), texts.txt, and bert-base-chinese/, a stand-in (there is
no network): a bert-tiny with a Chinese vocab, trained 1 step and written by
`ddpt export`. Two documented adjustments, and no others:
  * `ddpt` on PATH is a wrapper that appends size overrides to `ddpt train`
    and `ddpt finetune`: --set train.steps=4 train.batch_size=4
    train.accumulation=1 data.eval_batches=2 log.every=1 log.eval_every=4
    checkpoint.every=4; with --resume only steps (the run's step + 4) and
    the intervals, as --resume allows. Every other command is ddpt itself.
  * Open MPI's environment allows root and oversubscription
    (OMPI_ALLOW_RUN_AS_ROOT, OMPI_MCA_rmaps_base_oversubscribe), so
    `mpirun -np 4 ... --threads 8` runs as shown on 2 cores.
"""
import os
import py_compile
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

STEPS = 4
FORTUNES = "/usr/share/games/fortunes"
BLOCK_TIMEOUT_S = 300

# Each Troubleshooting message (exactly as README.md quotes it) and a shell
# command, run in the work directory after every block, that makes ddpt or
# mpirun print it. `env -u` drops the test's Open MPI allowances where the
# message is about them.
NO_ROOT_OK = "env -u OMPI_ALLOW_RUN_AS_ROOT -u OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"
NO_OVERSUB = "env -u OMPI_MCA_rmaps_base_oversubscribe"
PROVOKE = {
    # Only root can provoke it; for anyone else the message must at least be
    # in the Open MPI library mpirun runs with (then exit 1 as a failure would).
    "mpirun has detected an attempt to run as root.":
        NO_ROOT_OK + " mpirun -np 1 true" if os.geteuid() == 0 else
        "grep -ao '%s has detected an attempt to run as root.' $(ldd $(readlink -f $(command -v mpirun))"
        " | awk '/libopen-rte/ {print $3}') | sed 's/^%s/mpirun/'; exit 1",
    "There are not enough slots available in the system to satisfy the …":
        NO_OVERSUB + " mpirun -np $(($(nproc) + 1)) true",
    "ddpt train: rank …: 16 ranks but corpus corpus has only 8 shards: reshard with --shards 16 or more …":
        "mpirun -np 16 ddpt train configs/bert-small.ini --set data.corpus=corpus --threads 1 --run-dir t-shards",
    "ddpt train: no corpus: set [data] corpus = DIR in the config or --set data.corpus=DIR":
        "printf '[model]\\npreset = bert-tiny\\n' >t-nocorpus.ini && ddpt train t-nocorpus.ini --run-dir t-nocorpus",
    "ddpt train: corpus my-corpus: No such file or directory; make one with":
        "ddpt train configs/bert-small.ini --set data.corpus=my-corpus --run-dir t-nosuch",
    "ddpt train: corpus is an incomplete corpus: it has no manifest.json (ddpt shard did not finish); "
    "rerun ddpt shard with --overwrite":
        "mv corpus/manifest.json t-manifest.json && { ddpt train configs/bert-small.ini --set data.corpus=corpus"
        " --run-dir t-incomplete; rc=$?; mv t-manifest.json corpus/manifest.json; exit $rc; }",
    "ddpt shard: output directory corpus is not empty: choose an empty one, or pass --overwrite to replace "
    "the corpus in it":
        "ddpt shard --vocab vocab.txt --out corpus --shards 8 --seq-len 128 my-text/",
    "ddpt train: run-small already holds checkpoints (…): continue it with --resume run-small, or choose "
    "another --run-dir":
        "ddpt train configs/bert-small.ini --set data.corpus=corpus --run-dir run-small",
    "ddpt train: corpus cls is labelled (task classify, …): fine-tune on it with":
        "ddpt train configs/bert-small.ini --set data.corpus=cls --run-dir t-labelled",
    "ddpt train: reading the corpus vocab: corpus corpus was sharded with a different vocab than --init "
    "base-zh.h5 (…): shard the text with the model's vocab.txt":
        "ddpt train my.ini --init base-zh.h5 --set data.corpus=corpus --run-dir t-vocab",
    "ddpt import: bert-base-chinese holds pytorch_model.bin, a Python pickle ddpt does not read: convert it with …":
        "mkdir -p t-pickle && mv bert-base-chinese/model.safetensors t-pickle/"
        " && touch bert-base-chinese/pytorch_model.bin"
        " && { ddpt import bert-base-chinese --out t-pickle.h5; rc=$?;"
        " rm bert-base-chinese/pytorch_model.bin; mv t-pickle/model.safetensors bert-base-chinese/; exit $rc; }",
    "ddpt fill-mask: the text has no [MASK]: write [MASK] where a token is to be predicted":
        "ddpt fill-mask --ckpt run-small/$(cat run-small/LATEST) 'the cat sat on the mat.'",
    "ddpt train: --set optim.lr: [optim] lr = '1e9': allowed: a number above 0 .. 10":
        "ddpt train configs/bert-small.ini --set data.corpus=corpus --set optim.lr=1e9 --run-dir t-lr",
}

WRAPPER = r"""#!/bin/sh
# tests/readme_blocks.py: ddpt with size overrides for train and finetune.
real=%(real)s
n=%(steps)d
case "${1:-}" in
train|finetune) ;;
*) exec "$real" "$@" ;;
esac
run=""
prev=""
for a in "$@"; do
  [ "$prev" = --resume ] && run=$a
  prev=$a
done
if [ -n "$run" ]; then
  step=$(sed 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/' "$run/LATEST")
  exec "$real" "$@" --set train.steps=$((step + n)) --set log.eval_every=$n --set checkpoint.every=$n
fi
exec "$real" "$@" --set train.steps=$n --set train.batch_size=4 --set train.accumulation=1 \
  --set data.eval_batches=2 --set log.every=1 --set log.eval_every=$n --set checkpoint.every=$n
"""


def fail(msg):
    print("readme_blocks: " + msg)
    sys.exit(1)


def blocks(readme):
    """(line, lang, role, text) for every fenced block of README.md."""
    out, cur = [], None
    for no, line in enumerate(open(readme, encoding="utf-8").read().split("\n"), 1):
        if cur is None and line.startswith("```"):
            words = line[3:].split()
            cur = (no, words[0] if words else "", " ".join(words[1:]), [])
        elif cur is not None and line.startswith("```"):
            if line.strip() != "```":
                fail("README.md:%d: a fence inside the block opened at line %d" % (no, cur[0]))
            out.append((cur[0], cur[1], cur[2], "\n".join(cur[3]) + "\n"))
            cur = None
        elif cur is not None:
            cur[3].append(line)
    if cur is not None:
        fail("README.md:%d: block never closed" % cur[0])
    return out


def troubleshooting_messages(readme):
    """The message quoted at the start of each bullet of the Troubleshooting section."""
    text = open(readme, encoding="utf-8").read()
    m = re.search(r"^## \d+\. Troubleshooting\n(.*?)(?=^#)", text, re.S | re.M)
    if not m:
        fail("README.md has no '## N. Troubleshooting' section")
    msgs = [mm.group(1).strip() for mm in re.finditer(r"^- `([^`]+)`", m.group(1), re.M)]
    if not msgs:
        fail("README.md's Troubleshooting section quotes no message")
    return msgs


def sh(cmd, cwd, env, errexit=True):
    """bash -c CMD; errexit: -e, as README blocks run (a provocation restores
    what it moved aside after the command fails, so it runs without)."""
    flags = ["-eo", "pipefail"] if errexit else ["-o", "pipefail"]
    return subprocess.run(["bash"] + flags + ["-c", cmd], cwd=cwd, env=env, timeout=BLOCK_TIMEOUT_S,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def prelude(work, src, real, env):
    """The README's names, small (see the module docstring)."""
    os.symlink(os.path.join(src, "configs"), os.path.join(work, "configs"))
    os.symlink(os.path.join(src, "scripts"), os.path.join(work, "scripts"))
    ansi = re.compile(r"\x1b\[[0-9;]*m")

    def fortunes(name):
        text = ansi.sub("", open(os.path.join(FORTUNES, name), encoding="utf-8").read())
        return [" ".join(f.split()) for f in re.split(r"(?m)^%\n", text) if f.strip()]

    def write_lines(path, lines):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))

    topics = ["computers", "food", "love", "science", "startrek"]
    for name in topics:
        write_lines(os.path.join(work, "my-text", name + ".txt"), fortunes(name))
    for name in ["chinese", "tang300", "song100"]:
        write_lines(os.path.join(work, "my-text-zh", name + ".txt"), fortunes(name))
    examples = [(t, f[:300]) for t in topics for f in fortunes(t)[:60]]
    write_lines(os.path.join(work, "train.tsv"), ["%s\t%s" % e for e in examples])
    write_lines(os.path.join(work, "texts.txt"), [f[:200] for t in topics for f in fortunes(t)[60:62]])

    # bert-base-chinese/, the stand-in, made by ddpt itself (not the wrapper).
    made = os.path.join(work, ".stand-in")
    steps = [
        [real, "vocab", "--size", "8000", "--out", made + "/vocab.txt", "my-text-zh"],
        [real, "shard", "--vocab", made + "/vocab.txt", "--out", made + "/corpus", "--shards", "1",
         "--seq-len", "64", "my-text-zh"],
        [real, "train", "configs/bert-tiny.ini", "--set", "data.corpus=" + made + "/corpus", "--set",
         "train.steps=1", "--set", "train.batch_size=2", "--set", "log.eval_every=0", "--run-dir", made + "/run",
         "--threads", "1"],
        [real, "export", made + "/run/ckpt-00000001.h5", "--out", "bert-base-chinese"],
    ]
    os.makedirs(made)
    for argv in steps:
        p = subprocess.run(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            fail("prelude: %s failed:\n%s" % (" ".join(argv), p.stdout))
    shutil.rmtree(made)

    bindir = os.path.join(work, ".bin")
    os.makedirs(bindir)
    wrapper = os.path.join(bindir, "ddpt")
    with open(wrapper, "w") as f:
        f.write(WRAPPER % {"real": shlex.quote(real), "steps": STEPS})
    os.chmod(wrapper, 0o755)
    return bindir


def shape(line):
    """A line with each number (17, 0.0598, 1e-05, 00:31:02's parts) as N."""
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", line.strip())


last_output = [""]  # what the last sh block printed, for the output block after it


def kind(lang, role):
    """What this test does with a block (the module docstring), or None."""
    table = {("sh", ""): "run", ("sh", "ci"): "ci", ("text", "output"): "output",
             ("text", "hostfile"): "hostfile", ("bash", "slurm"): "slurm",
             ("python", ""): "python", ("python", "needs-transformers"): "python"}
    if (lang, role) in table:
        return table[(lang, role)]
    if lang == "ini" and re.fullmatch(r"[\w.-]+", role):
        return "file"
    if role in ("classify", "tag") and lang in ("tsv", "json", "text"):
        return "sample"
    return None


def run_block(no, lang, role, text, work, src, env, real, notes):
    where = "README.md:%d" % no
    k = kind(lang, role)
    if k == "run":
        p = sh(text, work, env)
        if p.returncode != 0:
            fail("%s: the block failed (exit %d):\n%s\n--- output:\n%s" % (where, p.returncode, text, p.stdout))
        last_output[0] = p.stdout
        return
    if k == "ci":
        for line in text.splitlines():
            cmd = line.split("#")[0].strip()
            if cmd and not os.access(os.path.join(src, cmd.split()[0]), os.X_OK):
                fail("%s: %s is not an executable script in the source tree" % (where, cmd.split()[0]))
        notes.append("%s: run by CI (.ci/run), not here: %s" % (where, "; ".join(
            l.split("#")[0].strip() for l in text.splitlines() if l.split("#")[0].strip())))
        return
    if k == "output":
        # The lines shown must have the shape of lines the block before
        # printed: the same words, numbers where it had numbers.
        printed = {shape(l) for l in last_output[0].splitlines()}
        for line in text.splitlines():
            if line.strip() and shape(line) not in printed:
                fail("%s: `%s` is not shaped like any line the block before it printed:\n%s"
                     % (where, line, last_output[0]))
        return
    if k == "file":
        with open(os.path.join(work, role), "w", encoding="utf-8") as f:
            f.write(text)
        return
    if k == "hostfile":
        # Open MPI refuses a host listed twice with slots, so the machines
        # become one localhost line holding all their slots.
        hosts = [l.split() for l in text.splitlines() if l.strip() and not l.startswith("#")]
        slots = [re.fullmatch(r"slots=(\d+)", h[1]) if len(h) == 2 else None for h in hosts]
        if not hosts or not all(slots):
            fail("%s: a hostfile line here is `HOST slots=N`" % where)
        with open(os.path.join(work, "hostfile"), "w") as f:
            f.write("localhost slots=%d\n" % sum(int(m.group(1)) for m in slots))
        notes.append("%s: hostfile's %d machines replaced by localhost with all their slots" % (where, len(hosts)))
        return
    if k == "slurm":
        path = os.path.join(work, "train.sbatch")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run(["bash", "-n", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            fail("%s: the Slurm script is not valid bash:\n%s" % (where, p.stdout))
        if not text.startswith("#!/bin/bash\n") or "#SBATCH" not in text:
            fail("%s: a Slurm script starts with #!/bin/bash and has #SBATCH lines" % where)
        notes.append("%s: SYNTAX-CHECKED ONLY (bash -n): a Slurm batch script, no Slurm here" % where)
        return
    if k == "sample":
        name = "sample-%d.%s" % (no, {"tsv": "tsv", "json": "jsonl", "text": "conll"}[lang])
        with open(os.path.join(work, name), "w", encoding="utf-8") as f:
            f.write(text)
        argv = [real, "shard", "--task", role, "--vocab", "vocab.txt", "--out", "sample-%d" % no, "--shards", "1",
                "--seq-len", "64", name]
        p = subprocess.run(argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            fail("%s: ddpt shard --task %s refuses the sample:\n%s" % (where, role, p.stdout))
        return
    if k == "python":
        path = os.path.join(work, "block-%d.py" % no)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        if role == "needs-transformers":
            have = subprocess.run(["/usr/bin/python3", "-c", "import transformers"], capture_output=True)
            if have.returncode != 0:
                try:
                    py_compile.compile(path, doraise=True)
                except py_compile.PyCompileError as e:
                    fail("%s: not valid Python: %s" % (where, e))
                notes.append("%s: SYNTAX-CHECKED ONLY (py_compile): transformers is not installed here" % where)
                return
        p = subprocess.run(["/usr/bin/python3", path], cwd=work, env=env, timeout=BLOCK_TIMEOUT_S,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            fail("%s: the Python block failed:\n%s" % (where, p.stdout))
        return
    raise AssertionError("kind %r has no case" % k)


def check_troubleshooting(readme, work, env):
    msgs = troubleshooting_messages(readme)
    for msg in msgs:
        if msg not in PROVOKE:
            fail("README.md's Troubleshooting quotes %r, which PROVOKE in tests/readme_blocks.py does not "
                 "know how to cause: add the command that prints it" % msg)
        t = time.time()
        p = sh(PROVOKE[msg], work, env, errexit=False)
        print("troubleshooting: %.1f s: %s" % (time.time() - t, msg))
        pattern = ".*?".join(re.escape(part.strip()) for part in msg.split("…"))
        if p.returncode == 0 or not re.search(pattern, p.stdout):
            fail("README.md's Troubleshooting quotes %r, but %s (exit %d) printed:\n%s"
                 % (msg, PROVOKE[msg], p.returncode, p.stdout))
    unused = set(PROVOKE) - set(msgs)
    if unused:
        fail("PROVOKE has messages README.md no longer quotes: %s" % sorted(unused))
    return len(msgs)


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    real, mpirun = os.path.abspath(argv[1]), argv[2]
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    readme = argv[3] if len(argv) == 4 else os.path.join(src, "README.md")
    work = tempfile.mkdtemp(prefix="readme-blocks.")
    try:
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1", LC_ALL="C.UTF-8")
        env["PATH"] = os.path.dirname(os.path.abspath(mpirun)) + os.pathsep + env["PATH"]
        all_blocks = blocks(readme)
        for no, lang, role, _ in all_blocks:  # before running anything
            if kind(lang, role) is None:
                fail("README.md:%d: a ```%s %s block this test does not know how to run; give it a role "
                     "that tests/readme_blocks.py explains" % (no, lang, role))
        t0 = time.time()
        env["PATH"] = prelude(work, src, real, env) + os.pathsep + env["PATH"]
        print("prelude: %.1f s" % (time.time() - t0))
        notes = []
        for no, lang, role, text in all_blocks:
            t = time.time()
            run_block(no, lang, role, text, work, src, env, real, notes)
            print("README.md:%d ```%s %s: ok, %.1f s" % (no, lang, role, time.time() - t))
        n = check_troubleshooting(readme, work, env)
        print("troubleshooting: all %d messages provoked and matched" % n)
        for note in notes:
            print(note)
        print("readme_blocks: %d blocks, all passed, %.0f s" % (len(all_blocks), time.time() - t0))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
