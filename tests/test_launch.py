"""launch/train.py end to end: the tutorial's printed predictions, SIGKILL-and-resume gives the same
params_sha256 as an uninterrupted run, and a bad config exits non-zero naming the field."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow   # each test runs the launcher in a subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "launch", "train.py")
ZHOU = os.path.join(ROOT, "configs", "zhou_gender.py")
FLAGS = ["--config.train.progress_bar=False", "--config.train.checkpoint_every=400"]


def _cmd(workdir, *extra):
    return [sys.executable, TRAIN, f"--config={ZHOU}", f"--workdir={workdir}", *FLAGS, *extra]


def _final_sha(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f][-1]["params_sha256"]


@pytest.mark.timeout(300)
def test_tutorial_prints_predictions_and_sigkill_resume_is_bit_identical(tmp_path):
    full = subprocess.run(_cmd(tmp_path / "full"), capture_output=True, text=True, timeout=240)
    assert full.returncode == 0, full.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in full.stdout.splitlines() if line.startswith(("Emily", "Frank")))
    assert float(lines["Emily"]) > 0.9 and float(lines["Frank"]) < 0.1

    workdir = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(workdir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = workdir / "checkpoints"
    deadline = time.time() + 200
    while time.time() < deadline and proc.poll() is None:
        if ckpts.is_dir() and any(d.isdigit() and int(d) >= 800 for d in os.listdir(ckpts)):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert max(int(d) for d in os.listdir(ckpts) if d.isdigit()) < 4000
    resumed = subprocess.run(_cmd(workdir), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _final_sha(workdir) == _final_sha(tmp_path / "full")


def test_bad_config_exits_nonzero_with_reason_on_last_line(tmp_path):
    r = subprocess.run(_cmd(tmp_path, "--config.optimizer.lr=-1.0"), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "config.optimizer.lr must be > 0" in r.stderr.strip().splitlines()[-1]


def test_help_exits_zero_and_a_bad_flag_one(tmp_path):
    """``--help`` prints the launcher's docstring and flags and is a success (absl alone exits 1)."""
    r = subprocess.run([sys.executable, TRAIN, "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Train and evaluate one config" in r.stdout and "--workdir" in r.stdout
    r = subprocess.run([sys.executable, TRAIN, "--no_such_flag"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no_such_flag" in r.stderr


SCRIPT = r'''
import sys
from jaxml.cli import runner

class Cycle:
    """Garbage by exit, reachable only through a reference cycle; its finalizer writes a file."""
    def __init__(self, path):
        self.me, self.path = self, path
    def __del__(self):
        open(self.path, "w").write("finalized")

def main(argv):
    Cycle(sys.argv[1] + "/cycle.txt")
    f = open(sys.argv[1] + "/buffered.txt", "w")
    f.write("buffered " * 1000)       # still in the buffer: the file object is alive at exit
    main.keep = f
    runner.keep = [f, runner]          # and alive in a cycle

runner.run(main)
'''


def test_a_launcher_exit_still_runs_finalizers_and_flushes_open_files(tmp_path):
    """runner.run collects garbage once and freezes the rest at exit (a faster shutdown): cyclic garbage is
    still finalized and a file object alive at exit still reaches the disk whole."""
    script = tmp_path / "launcher.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cycle.txt").read_text() == "finalized"
    assert (tmp_path / "buffered.txt").read_text() == "buffered " * 1000
