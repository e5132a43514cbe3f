"""Checkpoint fault soak: whole training processes killed, preempted and their checkpoints damaged, then resumed.

    python bench/checkpoint_soak.py [--kills=25] [--flips=12] [--sigterms=0 --per_run=4] [--seed=0]
    python bench/checkpoint_soak.py --kills=0 --flips=0 --sigterms=20 --config=configs/blobs_mlp.py --num_steps=1500

The run is the tutorial (``configs/zhou_gender.py``, 4,000 steps; ``--config``/``--num_steps`` pick another)
checkpointing every 25 steps, keeping 3.
  * kill: ``kill -9`` at a random moment (many land inside a checkpoint write), then resume to the end;
  * flip: ``kill -9`` at a random moment, flip 1-64 random bits in one random file of the newest step, resume;
  * truncated / emptied: the same with one file of the newest step cut in half / the step's directory emptied;
  * sigterm: SIGTERM at a random moment of training, ``--per_run`` times in a row on the same workdir (each resume
    signalled again), then resume to the end. Every signal must end the process with status 75 and the one line
    "preempted at step N; ...", N its newest checkpoint (otherwise WRONG).
Each resumed run must end bit-identical to an uninterrupted one (same ``params_sha256``) or stop with a one-line
message naming the bad step; a run that ends with other parameters is a failure. Not a timed test: whole
processes, minutes on 2 cores. Prints a table and, last, a JSON line with the counts.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_KILLS = flags.DEFINE_integer("kills", 25, "Runs killed with SIGKILL at a random moment, then resumed.")
_FLIPS = flags.DEFINE_integer("flips", 12, "Runs killed, bits flipped in the newest checkpoint, then resumed.")
_SIGTERMS = flags.DEFINE_integer("sigterms", 0, "SIGTERMs sent at random moments of training (--per_run a run).")
_PER_RUN = flags.DEFINE_integer("per_run", 4, "SIGTERMs in a row on one workdir before it resumes to the end.",
                                lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the kill times and the damage.")
_CONFIG = flags.DEFINE_string("config", os.path.join(ROOT, "configs", "zhou_gender.py"), "The run's config file.")
_STEPS = flags.DEFINE_integer("num_steps", 0, "config.train.num_steps of the run (0: the config's).")
PREEMPTED = 75


def command() -> list[str]:
    return ([sys.executable, os.path.join(ROOT, "launch", "train.py"), f"--config={_CONFIG.value}",
             "--config.train.checkpoint_every=25", "--config.train.keep_checkpoints=3",
             "--config.train.progress_bar=False"]
            + ([f"--config.train.num_steps={_STEPS.value}", "--config.train.num_epochs=0"] if _STEPS.value else []))


def train(workdir: str, *, kill_after: float | None = None) -> subprocess.CompletedProcess | None:
    """Run the training command in ``workdir``; with ``kill_after`` SIGKILL it after that many seconds (None
    when it was killed before it finished)."""
    proc = subprocess.Popen(command() + [f"--workdir={workdir}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
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


def records_after(workdir: str, step: int) -> bool:
    """Whether ``workdir``'s metrics hold a record past ``step`` (the run is training past its resume point)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return any(json.loads(line).get("step", 0) > step for line in f if line.strip())


def preempt(workdir: str, delay: float) -> tuple[str, int | None]:
    """Start the run (a resume after the first), SIGTERM it ``delay`` seconds after it trains past its newest
    checkpoint; ('ok', step saved) when it stopped as documented, ('finished', None) when it ended first, else
    ('WRONG: ...', None)."""
    newest = newest_step_dir(workdir)
    since = int(os.path.basename(newest)) if newest else 0
    proc = subprocess.Popen(command() + [f"--workdir={workdir}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    while proc.poll() is None and not records_after(workdir, since):
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=600)[1]
    if proc.returncode == 0:
        return "finished", None
    last = (err.strip().splitlines() or [""])[-1]
    step = newest_step_dir(workdir)
    step = int(os.path.basename(step)) if step else None
    if proc.returncode != PREEMPTED or last != f"jaxml: preempted at step {step}; checkpoint saved; resume with the "\
                                              "same command":
        return f"WRONG: exit {proc.returncode}, newest checkpoint {step}; {last}", None
    return "ok", step


def sigterm_trial(reference: str, rng: random.Random, root: str, i: int, train_s: float) -> tuple[str, str, int]:
    """``--per_run`` SIGTERMs in a row on one workdir, then the resume to the end: (outcome, detail, signals)."""
    workdir = os.path.join(root, f"sigterm_{i}")
    steps = []
    while len(steps) < _PER_RUN.value:
        outcome, step = preempt(workdir, rng.uniform(0.0, 0.8) * train_s / _PER_RUN.value)
        if outcome == "finished":
            break
        if outcome != "ok":
            return "WRONG", outcome, len(steps) + 1
        steps.append(step)
    done = train(workdir)
    detail = f"preempted at steps {steps}"
    if done.returncode == 0 and final_sha(workdir) == reference:
        return "identical", detail, len(steps)
    return "WRONG", f"{detail}: exit {done.returncode}, sha {final_sha(workdir)}", len(steps)


def main(argv):
    del argv
    rng = random.Random(_SEED.value)
    root = tempfile.mkdtemp(prefix="jaxml-soak-")
    t0 = time.time()
    ref = subprocess.Popen(command() + [f"--workdir={os.path.join(root, 'reference')}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT)
    while ref.poll() is None and not records_after(os.path.join(root, "reference"), 0):
        time.sleep(0.01)
    first_record = time.time() - t0                # start-up: imports, data, compilation
    err = ref.communicate()[1]
    ref = subprocess.CompletedProcess(ref.args, ref.returncode, "", err)
    wall = time.time() - t0
    reference = final_sha(os.path.join(root, "reference"))
    if ref.returncode != 0 or reference is None:
        raise SystemExit(f"the reference run failed: {ref.stderr[-500:]}")
    kinds = ["kill"] * _KILLS.value + ["flip"] * _FLIPS.value + (
        ["truncated", "emptied"] if _KILLS.value + _FLIPS.value else [])
    counts = {"identical": 0, "stopped": 0, "WRONG": 0, "skipped": 0}
    print(f"{'trial':<14}{'outcome':<11}detail")
    for i, kind in enumerate(kinds):
        outcome, detail = trial(kind, reference, rng, root, i, wall)
        counts[outcome] += 1
        print(f"{kind + '_' + str(i):<14}{outcome:<11}{detail}", flush=True)
    signals, i = 0, 0
    while signals < _SIGTERMS.value and i < 3 * _SIGTERMS.value:
        outcome, detail, n = sigterm_trial(reference, rng, root, i, wall - first_record)
        counts[outcome], signals, i = counts[outcome] + 1, signals + n, i + 1
        print(f"{'sigterm_' + str(i - 1):<14}{outcome:<11}{detail}", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    print(f"{sum(counts.values())} trials ({signals} SIGTERMs) in {time.time() - t0:.0f} s: {counts}")
    counts["sigterms"] = signals
    print(json.dumps({"bench": "checkpoint_soak", "unit": "trials", "higher_is_better": True,
                      "results": counts, "ratios": {}}))


if __name__ == "__main__":
    app.run(main)
