"""Every README command with its default CPU layout vs forced onto one device: no command may get slower.

    flock /tmp/jaxml-bench.lock python bench/layout.py [--repeats=1] [--jobs=gru,mnist_mlp,...] [--steps=300]

Training jobs (``launch/train.py``, the README's results table and tutorial) run ``--steps`` steps (the CNNs
and the clock ``--cnn_steps``) logging every ``--log_every``; the figure is the median ``examples_per_s`` of the
logged windows after the first (which holds the compile), from ``metrics.jsonl``. ``default`` is the command as
the README gives it (``config.parallel.cpu_devices="auto"``, jaxml/layout.py); ``one`` adds
``--num_cpu_devices=1 --config.parallel.backend=none``. Launcher jobs, timed as whole processes (runs per
minute): ``palette`` = ``launch/kmeans.py --image=china.png --k=5`` (scikit-learn's sample photo) with a warm
compilation cache, ``palette_first`` the same from an empty one, ``nb`` = ``launch/naive_bayes.py
--config=configs/imdb_nb.py`` (needs ``$JAXML_DATA_DIR/imdb``); their ``one`` adds ``--num_cpu_devices=1``.
The two sides alternate within each round (order flipped every round); ratio = default / one (> 1: the default
layout is faster), the median over rounds. A job whose default run is already on one device (its first line)
is not run again: its ratio is 1 by construction ("same layout"). ``--candidate_devices=N`` times a layout not
yet adopted (the training jobs' default side adds ``--config.parallel.cpu_devices=N``). MNIST/Fashion need
``$JAXML_DATA_DIR``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

import timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_JOBS = {   # name: (config, steps flag); every launch/train.py command of README.md
    "tutorial": ("configs/zhou_gender.py", "steps"),
    "gru": ("configs/gru_adding.py", "steps"),
    "mnist_mlp": ("configs/mnist_mlp.py", "steps"),
    "fashion_mlp": ("configs/fashion_mlp.py", "steps"),
    "mnist_cnn": ("configs/mnist_cnn.py", "cnn_steps"),
    "fashion_cnn": ("configs/fashion_cnn.py", "cnn_steps"),
    "clock": ("configs/clock.py", "cnn_steps"),
}
LAUNCHER_JOBS = ("palette", "palette_first", "nb")
SAME = " 1 local / 1 global devices"   # in the first line: the default is already the one-device layout
ONE_DEVICE = ("--num_cpu_devices=1", "--config.parallel.backend=none")

_REPEATS = flags.DEFINE_integer("repeats", 1, "Rounds; each runs every job both ways (ratios: medians over rounds).")
_JOBS = flags.DEFINE_list("jobs", [*TRAIN_JOBS, *LAUNCHER_JOBS], "Jobs to run.")
_STEPS = flags.DEFINE_integer("steps", 300, "Training steps of the MLP, GRU and tutorial jobs.")
_CNN_STEPS = flags.DEFINE_integer("cnn_steps", 60, "Training steps of the CNN and clock jobs.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 0, "Steps per logged window (0: a sixth of the steps).")
_CANDIDATE = flags.DEFINE_integer("candidate_devices", 0, "N > 0: the training jobs' default side adds "
                                  "--config.parallel.cpu_devices=N (a layout to try before adopting it in auto).")


def run(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    """(wall seconds, stderr) of one process run from the repository root; a failure raises with its stderr."""
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return time.perf_counter() - t, out.stderr


def train_speed(config: str, steps: int, extra: tuple[str, ...], scratch: str) -> tuple[float, str]:
    """(median examples/s of the windows after the first, the layout line) of one short training run."""
    log_every = _LOG_EVERY.value or max(steps // 6, 1)
    workdir = tempfile.mkdtemp(dir=scratch)
    _, err = run([sys.executable, "launch/train.py", f"--config={config}", f"--workdir={workdir}",
                  f"--config.train.num_steps={steps}", f"--config.train.log_every={log_every}",
                  "--config.train.progress_bar=false", *extra])
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        speeds = [r["examples_per_s"] for r in map(json.loads, f) if r.get("split") == "train"
                  and "examples_per_s" in r]
    if len(speeds) < 2:
        raise RuntimeError(f"{config}: {len(speeds)} logged windows; give more --steps")
    return statistics.median(speeds[1:]), next((ln for ln in err.splitlines() if ln.startswith("JAX ")), "")


def china_png(folder: str) -> str:
    """scikit-learn's bundled sample photo (no download) as a PNG."""
    from PIL import Image
    from sklearn.datasets import load_sample_image
    path = os.path.join(folder, "china.png")
    Image.fromarray(load_sample_image("china.jpg")).save(path)
    return path


def launcher_speed(job: str, extra: tuple[str, ...], scratch: str) -> tuple[float, str]:
    """(runs per minute, the layout line) of one whole launcher process."""
    out = tempfile.mkdtemp(dir=scratch)
    env = dict(os.environ)
    if job == "nb":
        cmd = ["launch/naive_bayes.py", "--config=configs/imdb_nb.py", f"--workdir={out}"]
    else:
        cmd = ["launch/kmeans.py", f"--image={os.path.join(scratch, 'china.png')}", "--k=5", f"--out={out}/s.png"]
        env["JAXML_COMPILATION_CACHE"] = out if job == "palette_first" else os.path.join(scratch, "cache")
    seconds, err = run([sys.executable, *cmd, *extra[:1]], env)
    return 60.0 / seconds, next((ln for ln in err.splitlines() if ln.startswith("JAX ")), "")


def main(argv):
    del argv
    unknown = set(_JOBS.value) - set(TRAIN_JOBS) - set(LAUNCHER_JOBS)
    if unknown:
        raise ValueError(f"unknown --jobs {sorted(unknown)}; known: {[*TRAIN_JOBS, *LAUNCHER_JOBS]}")
    sides = {"default": (f"--config.parallel.cpu_devices={_CANDIDATE.value}",) if _CANDIDATE.value else (),
             "one": ONE_DEVICE}
    speeds = {(job, side): [] for job in _JOBS.value for side in sides}
    lines = {}
    with tempfile.TemporaryDirectory() as scratch:
        china_png(scratch)
        if "palette" in _JOBS.value:   # fill the warm cache, both layouts
            for extra in ((), ONE_DEVICE):
                launcher_speed("palette", extra, scratch)
        for rnd in range(_REPEATS.value):
            for job in _JOBS.value:
                for side in (list(sides) if rnd % 2 == 0 else list(sides)[::-1]):
                    if side == "one" and SAME in lines.get((job, "default"), ""):
                        continue                      # the default is this layout: nothing to compare
                    if job in TRAIN_JOBS:
                        config, steps = TRAIN_JOBS[job]
                        v, line = train_speed(config, _STEPS.value if steps == "steps" else _CNN_STEPS.value,
                                              sides[side], scratch)
                    else:
                        v, line = launcher_speed(job, sides[side] if side == "one" else (), scratch)
                    speeds[(job, side)].append(v)
                    lines[(job, side)] = line
                    print(f"round {rnd} {job:13s} {side:7s} {v:10.2f}  {line}", file=sys.stderr, flush=True)
    results, ratios, table = {}, {}, []
    for job in _JOBS.value:
        if not speeds[(job, "one")]:                  # same layout both ways
            speeds[(job, "one")], lines[(job, "one")] = speeds[(job, "default")], "same layout as default"
        per_round = [d / o for d, o in zip(speeds[(job, "default")], speeds[(job, "one")])]
        ratios[f"{job}:default/one"] = statistics.median(per_round)
        for side in sides:
            results[f"{job}:{side}"] = statistics.median(speeds[(job, side)])
            note = lines[(job, side)].split("; ", 1)[-1].split(": [", 1)[0] if job in TRAIN_JOBS else (
                "runs/min, " + lines[(job, side)].split(", ", 3)[-1].split(": [", 1)[0])
            table.append((f"{job} {side}", results[f"{job}:{side}"], note))
    timing.emit("layout", "ex/s | runs/min", True, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
