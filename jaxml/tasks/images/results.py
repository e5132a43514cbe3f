"""Train the image-classification configs and print the README results table.

    python -m jaxml.tasks.images.results --runs=mnist_mlp,mnist_mlp:permuted --root=runs/images
    python -m jaxml.tasks.images.results --collect_only --root=runs/images     # table from finished runs

Each run is ``launch/train.py --config=configs/<name>.py[:arg] --workdir=<root>/<name>[_arg]``; a finished
workdir is not retrained and an interrupted one resumes from its last checkpoint (its wall time adds up). The
table gives the final test accuracy from metrics.jsonl, the seed, epochs and the wall time this machine took
(``wall_s.txt``).
Needs $JAXML_DATA_DIR and a source checkout (it runs the repository's configs/ and launch/).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from absl import app, flags

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))   # the repository
REPORT = {"mnist_mlp": 0.981, "mnist_cnn": 0.990, "fashion_mlp": 0.877, "fashion_cnn": 0.921}
GOAL = {"mnist_mlp": 0.985, "mnist_cnn": 0.993, "fashion_mlp": 0.89, "fashion_cnn": 0.93}
ALL = ("mnist_mlp", "mnist_mlp:permuted", "mnist_cnn", "mnist_cnn:permuted", "fashion_mlp", "fashion_mlp:permuted",
       "fashion_cnn", "fashion_cnn:permuted")

_RUNS = flags.DEFINE_list("runs", list(ALL), "config[:arg] names to train.")
_ROOT = flags.DEFINE_string("root", os.path.join(ROOT, "runs", "images"), "Parent of the run workdirs.")
_COLLECT = flags.DEFINE_bool("collect_only", False, "Only print the table from finished workdirs.")


def workdir(run: str) -> str:
    return os.path.join(_ROOT.value, run.replace(":", "_"))


def train(run: str) -> None:
    """Train one run unless it has finished. ``wall_s.txt`` holds the wall seconds of all the invocations
    that trained it (a run stopped and resumed counts each part once; SIGTERM still records its part)."""
    if row(run) is not None:
        return
    name, _, arg = run.partition(":")
    wd = workdir(run)
    os.makedirs(wd, exist_ok=True)
    cmd = [sys.executable, os.path.join(ROOT, "launch", "train.py"),
           f"--config={os.path.join(ROOT, 'configs', name + '.py')}{':' + arg if arg else ''}", f"--workdir={wd}",
           "--config.train.progress_bar=False"]
    path = os.path.join(wd, "wall_s.txt")
    before = float(open(path).read()) if os.path.exists(path) else 0.0
    t = time.time()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        subprocess.run(cmd, check=True)
    finally:
        with open(path, "w") as f:
            f.write(f"{before + time.time() - t:.0f}\n")


def row(run: str) -> str | None:
    wd = workdir(run)
    path = os.path.join(wd, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    final = [r for r in recs if r["split"] == "test" and "params_sha256" in r]
    if not final:
        return None
    name, _, arg = run.partition(":")
    epochs = max((r.get("epoch", 0) for r in recs if r["split"] == "train"), default=0)
    wall_path = os.path.join(wd, "wall_s.txt")
    wall = open(wall_path).read().strip() if os.path.exists(wall_path) else "?"
    goal = "" if arg else ("yes" if final[-1]["accuracy"] >= GOAL[name] else "no")
    return (f"| {name}{' (permuted)' if arg else ''} | {REPORT[name] if not arg else ''} "
            f"| {GOAL[name] if not arg else ''} "
            f"| **{final[-1]['accuracy']:.4f}** | {goal} | 0 | {epochs:.0f} | {wall} |")


def main(argv):
    del argv
    if not _COLLECT.value:
        for run in _RUNS.value:
            train(run)
    print("| model | report | goal | jaxml test accuracy | goal met | seed | epochs | wall s (2 CPU cores) |")
    print("|---|---|---|---|---|---|---|---|")
    for run in ALL:
        r = row(run)
        if r:
            print(r)


if __name__ == "__main__":
    app.run(main)
