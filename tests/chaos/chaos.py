"""The chaos test (issue 16): a run killed over and over at random moments
and resumed each time ends with exactly the parameters and optimizer state
of a run that was never interrupted.

bert-tiny trains S steps on a corpus of 12 even shards, checkpointing every
step. Each launch of `mpirun ddpt train` (fresh, then --resume) meets one
seeded mishap at a random step and moment:
  kill9  SIGKILL to one random rank;
  term   SIGTERM to every rank (a clean stop: checkpoint, exit 3);
  write  SIGKILL to one random rank while rank 0 is inside a checkpoint
         write (held there by DDPT_TEST_CKPT_HOLD, storage/ckpt_dir.c);
and some resumes change the rank count: 1, 2 or 4 ranks. A step is always
4 micro-batches of 3 sequences; the run starts on 2 ranks accumulating 2,
and a resume on another world sets nothing: ddpt derives the accumulation
(4, 2 or 1) from the checkpoint. Once at least KILLS mishaps have happened
the run is let finish.

The reference is ONE uninterrupted 2-rank run (2 x accumulation 2). The
final checkpoints' /params and /optim must be equal bit for bit: the
gradient sum follows one order over the 4 micro-batches whatever the world
(comm.h, docs/distributed.md).

usage: chaos.py DDPT MPIRUN CORPUS_SCRIPT WORKDIR
  DDPT_CHAOS_KILLS (default 5), DDPT_CHAOS_STEPS (default 40),
  DDPT_CHAOS_SEED (default 16) choose the size; the long mode is e.g.
  DDPT_CHAOS_KILLS=100 DDPT_CHAOS_STEPS=400.
"""
import glob
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

MICRO_BATCH, SLOTS = 3, 4
WORLDS = [2, 2, 1, 4]  # a resume's rank count, drawn from these
LAUNCH_TIMEOUT = 120


def fail(msg):
    print(f"chaos: {msg}", flush=True)
    sys.exit(1)


def rank_pids(mpirun_pid):
    """{rank: pid} of the ranks mpirun started (its children with OMPI_COMM_WORLD_RANK)."""
    found = {}
    for status in glob.glob("/proc/[0-9]*/status"):
        pid = int(status.split("/")[2])
        try:
            with open(status) as f:
                ppid = next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
            if ppid != mpirun_pid:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except (OSError, StopIteration):
            continue
        for item in env:
            if item.startswith(b"OMPI_COMM_WORLD_RANK="):
                found[int(item.split(b"=")[1])] = pid
    return found


def latest_step(run):
    try:
        with open(os.path.join(run, "LATEST")) as f:
            return int(f.read().strip()[5:13])
    except OSError:
        return 0


def logged_step(run):
    """The highest step in metrics.jsonl so far (0 when none)."""
    best = 0
    try:
        with open(os.path.join(run, "metrics.jsonl")) as f:
            for line in f:
                at = line.find('"step":')
                if at >= 0:
                    best = max(best, int(line[at + 7:line.index(",", at)]))
    except (OSError, ValueError):
        pass
    return best


class Chaos:
    def __init__(self, ddpt, mpirun, work, steps, seed):
        self.ddpt, self.mpirun, self.work, self.steps = ddpt, mpirun, work, steps
        self.rng = random.Random(seed)
        self.ini = os.path.join(work, "tiny.ini")
        with open(self.ini, "w") as f:
            f.write("[model]\npreset = bert-tiny\n[schedule]\nkind = constant\nwarmup_steps = 5\n")
        self.launches = 0
        self.ckpt_opts = []

    def command(self, run, world, until, extra=()):
        fresh = latest_step(run) == 0
        cmd = [self.mpirun, "--allow-run-as-root", "--oversubscribe", "-np", str(world), self.ddpt, "train"]
        cmd += [self.ini, "--run-dir", run] if fresh else ["--resume", run]
        cmd += ["--threads", "1", "--set", f"train.steps={until}", "--set", "log.every=1"]
        if fresh:
            cmd += ["--set", f"data.corpus={self.work}/corpus", "--set", "log.eval_every=0",
                    "--set", f"train.batch_size={MICRO_BATCH}", "--set", f"train.accumulation={SLOTS // world}"]
        return cmd + self.ckpt_opts + list(extra)

    def launch(self, run, world, until, env=None, extra=()):
        self.launches += 1
        out = open(os.path.join(self.work, f"launch-{self.launches}.out"), "w")
        return subprocess.Popen(self.command(run, world, until, extra), stdout=out, stderr=subprocess.STDOUT,
                                env=env), out.name

    def finish(self, job, log, expect_ok):
        try:
            rc = job.wait(timeout=LAUNCH_TIMEOUT)
        except subprocess.TimeoutExpired:
            job.kill()
            fail(f"a launch hung for {LAUNCH_TIMEOUT} s (see {log}):\n{open(log).read()[-3000:]}")
        if expect_ok and rc != 0:
            fail(f"a launch meant to run through exited {rc}:\n{open(log).read()[-3000:]}")
        return rc

    def wait_until(self, job, run, step):
        """Waits until this launch has logged step (STATUS names one of its
        ranks, so lines of a killed launch do not count); False if the job
        ended first."""
        deadline = time.time() + LAUNCH_TIMEOUT
        while logged_step(run) < step or not self.is_ours(job, run):
            if job.poll() is not None:
                return False
            if time.time() > deadline:
                fail(f"step {step} was not reached within {LAUNCH_TIMEOUT} s")
            time.sleep(0.01)
        return True

    @staticmethod
    def is_ours(job, run):
        try:
            with open(os.path.join(run, "STATUS")) as f:
                words = f.read().split()
        except OSError:
            return False
        return len(words) == 3 and words[0] == "running" and int(words[2]) in rank_pids(job.pid).values()

    def mishap(self, run, world, kind):
        """One launch that meets kind at a random step; True when it happened."""
        start = latest_step(run)
        at = min(self.steps - 1, start + self.rng.randint(1, 4))
        delay = self.rng.uniform(0, 0.05)
        if kind == "write":
            marker = os.path.join(self.work, f"held-{self.launches + 1}")
            env = dict(os.environ, DDPT_TEST_CKPT_HOLD=f"{at}:{marker}")
            job, log = self.launch(run, world, self.steps, env=env)
            deadline = time.time() + LAUNCH_TIMEOUT
            while not os.path.exists(marker):
                if job.poll() is not None:
                    fail(f"the launch ended before checkpoint {at} was held:\n{open(log).read()[-3000:]}")
                if time.time() > deadline:
                    fail(f"checkpoint {at} was not held within {LAUNCH_TIMEOUT} s")
                time.sleep(0.01)
            victim = self.rng.randrange(world)
            os.kill(rank_pids(job.pid)[victim], signal.SIGKILL)
            self.finish(job, log, False)
            if latest_step(run) >= at:
                fail(f"killed inside checkpoint {at}'s write, LATEST names step {latest_step(run)}")
            return True
        job, log = self.launch(run, world, self.steps)
        if not self.wait_until(job, run, at):
            self.finish(job, log, True)
            return False
        time.sleep(delay)
        pids = rank_pids(job.pid)
        if kind == "kill9":
            os.kill(pids[self.rng.randrange(world)], signal.SIGKILL)
        else:
            for pid in pids.values():
                os.kill(pid, signal.SIGTERM)
        rc = self.finish(job, log, False)
        if rc == 0 and latest_step(run) != self.steps:
            fail(f"a run hit by {kind} exited 0 at step {latest_step(run)}")
        # A signal that landed after the last step (or before the handlers
        # were set) is no mishap survived: not counted.
        return rc != 0

    def chaos_run(self, run, kills):
        done, kinds = 0, {"kill9": 0, "term": 0, "write": 0}
        world = 2
        firsts = ["kill9", "term", "write"]
        self.rng.shuffle(firsts)
        other_worlds = [1, 4]
        self.rng.shuffle(other_worlds)
        while latest_step(run) < self.steps:
            if done >= kills:
                job, log = self.launch(run, world, self.steps)
                self.finish(job, log, True)
                break
            # The first three launches meet one mishap of each kind.
            kind = firsts[done] if done < len(firsts) else self.rng.choice(["kill9", "kill9", "term", "write"])
            if kind == "write" and latest_step(run) + 1 >= self.steps:
                kind = "kill9"
            if self.mishap(run, world, kind):
                done += 1
                kinds[kind] += 1
            # Some resumes change the rank count: the first two go to 1 and 4
            # ranks (in a random order), so that even the CI mode sees both.
            world = other_worlds[done - 1] if 0 < done <= len(other_worlds) else self.rng.choice(WORLDS)
        return done, kinds

    def schedule(self, run):
        """[(last step, world)]: the stretches of steps each rank count computed
        (read back from every checkpoint's world_size), for the report."""
        stretches = []
        for step in range(1, self.steps + 1):
            with h5py.File(os.path.join(run, f"ckpt-{step:08d}.h5"), "r") as f:
                world = int(f.attrs["world_size"])
            if stretches and stretches[-1][1] == world:
                stretches[-1] = (step, world)
            else:
                stretches.append((step, world))
        return stretches

    def reference_run(self, run):
        job, log = self.launch(run, 2, self.steps)
        self.finish(job, log, True)


def same_state(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for group in ("params", "optim/m", "optim/v"):
            names_a, names_b = sorted(fa[group].keys()), sorted(fb[group].keys())
            if names_a != names_b:
                return f"/{group} holds different names"
            for name in names_a:
                x, y = fa[group][name][()], fb[group][name][()]
                if x.shape != y.shape or not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
                    return f"/{group}/{name} differs"
    return None


def main():
    ddpt, mpirun, corpus_script, work = sys.argv[1:5]
    kills = int(os.environ.get("DDPT_CHAOS_KILLS", "5"))
    steps = int(os.environ.get("DDPT_CHAOS_STEPS", "40"))
    seed = int(os.environ.get("DDPT_CHAOS_SEED", "16"))
    subprocess.run([corpus_script, ddpt, work], check=True)
    c = Chaos(ddpt, mpirun, work, steps, seed)
    chaos = os.path.join(work, "chaos")
    started = time.time()
    # checkpoint.every = 1 and keep = 0 (every checkpoint kept): the world
    # size of every step is read back for the report.
    c.ckpt_opts = ["--set", "checkpoint.every=1", "--set", "checkpoint.keep=0"]
    done, kinds = c.chaos_run(chaos, kills)
    stretches = c.schedule(chaos)
    took = time.time() - started
    ref = os.path.join(work, "reference")
    c.ckpt_opts = ["--set", "checkpoint.every=0"]
    c.reference_run(ref)
    why = same_state(os.path.join(chaos, f"ckpt-{steps:08d}.h5"), os.path.join(ref, f"ckpt-{steps:08d}.h5"))
    if why:
        fail(f"after {done} kills the final checkpoint differs from the reference run: {why}")
    plan = ", ".join(f"to step {end} on {world}" for end, world in stretches)
    per_world = {w: 0 for w in sorted(set(WORLDS))}
    last = 0
    for end, world in stretches:
        per_world[world] += end - last
        last = end
    print(f"chaos: {done} kills survived ({kinds['kill9']} SIGKILL of one rank, {kinds['term']} SIGTERM to all, "
          f"{kinds['write']} SIGKILL during a checkpoint write) in {c.launches} launches over {took:.0f} s; "
          f"{steps} steps ({plan} ranks; steps per rank count: " +
          ", ".join(f"{w}: {n}" for w, n in per_world.items()) + "): /params and /optim equal the uninterrupted 2-rank run's bit for bit", flush=True)
    if done < kills:
        fail(f"only {done} kills happened, want {kills}")


if __name__ == "__main__":
    main()
