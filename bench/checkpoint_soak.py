"""Checkpoint fault soak: whole training processes killed and their checkpoints damaged, then resumed.

    python bench/checkpoint_soak.py [--kills=25] [--flips=12] [--seed=0]

The run is the tutorial (``configs/zhou_gender.py``, 4,000 steps) checkpointing every 25 steps, keeping 3.
  * kill: ``kill -9`` at a random moment (many land inside a checkpoint write), then resume to the end;
  * flip: ``kill -9`` at a random moment, flip 1-64 random bits in one random file of the newest step, resume;
  * truncated / emptied: the same with one file of the newest step cut in half / the step's directory emptied.
Each resumed run must end bit-identical to an uninterrupted one (same ``params_sha256``) or stop with a one-line
message naming the bad step; a run that ends with other parameters is a failure. Not a timed test: whole
processes, minutes on 2 cores. Prints a table and, last, a JSON line with the counts.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KILLS = flags.DEFINE_integer("kills", 25, "Runs killed with SIGKILL at a random moment, then resumed.")
_FLIPS = flags.DEFINE_integer("flips", 12, "Runs killed, bits flipped in the newest checkpoint, then resumed.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the kill times and the damage.")

CMD = [sys.executable, os.path.join(ROOT, "launch", "train.py"), "--config=" + os.path.join(ROOT, "configs",
       "zhou_gender.py"), "--config.train.checkpoint_every=25", "--config.train.keep_checkpoints=3",
       "--config.train.progress_bar=False"]


def train(workdir: str, *, kill_after: float | None = None) -> subprocess.CompletedProcess | None:
    """Run the training command in ``workdir``; with ``kill_after`` SIGKILL it after that many seconds (None
    when it was killed before it finished)."""
    proc = subprocess.Popen(CMD + [f"--workdir={workdir}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=kill_after if kill_after is not None else 600)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def final_sha(workdir: str) -> str | None:
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    shas = [json.loads(line).get("params_sha256") for line in open(path) if line.strip() and "params_sha256" in line]
    return shas[-1] if shas else None


def newest_step_dir(workdir: str) -> str | None:
    ckpt = os.path.join(workdir, "checkpoints")
    steps = sorted((int(s) for s in os.listdir(ckpt) if s.isdigit()), reverse=True) if os.path.isdir(ckpt) else []
    return os.path.join(ckpt, str(steps[0])) if steps else None


def damage(step_dir: str, kind: str, rng: random.Random) -> str:
    files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir) for f in fs if os.path.getsize(os.path.join(d, f))]
    path = rng.choice(files)
    if kind == "flip":
        data = bytearray(open(path, "rb").read())
        for _ in range(rng.randint(1, 64)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        open(path, "wb").write(bytes(data))
    elif kind == "truncated":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    else:
        shutil.rmtree(step_dir)
        os.makedirs(step_dir)
        return f"emptied {os.path.basename(step_dir)}"
    return f"{kind} {os.path.relpath(path, os.path.dirname(os.path.dirname(step_dir)))}"


def trial(kind: str, reference: str, rng: random.Random, root: str, i: int, wall: float) -> tuple[str, str]:
    workdir = os.path.join(root, f"{kind}_{i}")
    while train(workdir, kill_after=rng.uniform(0.4, 0.95) * wall) is not None:   # it finished first: again
        shutil.rmtree(workdir)
    what = "killed"
    if kind != "kill":
        step_dir = newest_step_dir(workdir)
        if step_dir is None:
            return "skipped", "no checkpoint before the kill"
        what = damage(step_dir, kind, rng)
    done = train(workdir)
    if done.returncode == 0 and final_sha(workdir) == reference:
        moved = "moved it aside" in done.stderr
        return "identical", what + ("; a damaged step was moved aside" if moved else "")
    last = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode != 0 and "step" in last and len(done.stderr.strip().splitlines()[-1]) < 400:
        return "stopped", f"{what}: {last}"
    return "WRONG", f"{what}: exit {done.returncode}, sha {final_sha(workdir)}; {last}"


def main(argv):
    del argv
    rng = random.Random(_SEED.value)
    root = tempfile.mkdtemp(prefix="jaxml-soak-")
    t0 = time.time()
    ref = train(os.path.join(root, "reference"))
    wall = time.time() - t0
    reference = final_sha(os.path.join(root, "reference"))
    if ref.returncode != 0 or reference is None:
        raise SystemExit(f"the reference run failed: {ref.stderr[-500:]}")
    kinds = ["kill"] * _KILLS.value + ["flip"] * _FLIPS.value + ["truncated", "emptied"]
    counts = {"identical": 0, "stopped": 0, "WRONG": 0, "skipped": 0}
    print(f"{'trial':<14}{'outcome':<11}detail")
    for i, kind in enumerate(kinds):
        outcome, detail = trial(kind, reference, rng, root, i, wall)
        counts[outcome] += 1
        print(f"{kind + '_' + str(i):<14}{outcome:<11}{detail}", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    print(f"{sum(counts.values())} trials in {time.time() - t0:.0f} s: {counts}")
    print(json.dumps({"bench": "checkpoint_soak", "unit": "trials", "higher_is_better": True,
                      "results": counts, "ratios": {}}))


if __name__ == "__main__":
    app.run(main)
