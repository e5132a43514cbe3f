"""Shared by the naive Bayes and NBSVM launcher tests: ``launch/naive_bayes.py`` run as a user runs it."""
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def launch(*args, env_extra=None) -> subprocess.CompletedProcess:
    """``python launch/naive_bayes.py ARGS`` from the repo root (stdout/stderr captured, 300 s timeout)."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, str(ROOT / "launch" / "naive_bayes.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
