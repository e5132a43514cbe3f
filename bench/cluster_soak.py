"""Cluster soak: the tutorial on 2 processes x 2 fake CPU devices under shard_map, N times, each with a timeout.

    python bench/cluster_soak.py [--n=50] [--timeout_s=120] [--peer_n=0] [--sync_every=S --num_steps=K]

One run is ``launch/local_cluster.py --num_processes=2 --devices_per_process=2 --timeout_s=T -- python
launch/train.py --config=configs/zhou_gender.py --config.parallel.backend=shard_map --config.data.batch_size=4
--config.data.eval_batch_size=4`` in a fresh workdir: *completed* = exit 0 with the final ``params_sha256``
record, *hung* = the launcher's timeout (exit 124), *failed* = anything else. Completed runs must all end with
the same ``params_sha256``. ``--peer_n`` runs as many again, interleaved, with XLA:CPU's own thread-pool size
(``PJRT_NPROC`` = the cores, what ``jaxml.parallel.size_cpu_pool`` overrides): the before/after of the deadlock
fix; ``--sync_every=1000000 --num_steps=400`` is the stress case (no sync: the host runs hundreds of programs
ahead). Not a timed test: whole processes, ~15 s a run on 2 cores. Prints a table, then a JSON line with the
completed fractions (ratio jaxml / peer when the peer completed any).
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
_N = flags.DEFINE_integer("n", 50, "Runs of the case.")
_TIMEOUT = flags.DEFINE_integer("timeout_s", 120, "Seconds a run may take before the launcher kills it (hung).")
_PEER_N = flags.DEFINE_integer("peer_n", 0, "Runs with XLA:CPU's default pool size, interleaved (0 = none).")
_SYNC = flags.DEFINE_integer("sync_every", 0, "config.train.sync_every for the runs (0 = the config's, 10); "
                             "1000000 with --num_steps=400 never syncs: the stress case that always hung before")
_STEPS = flags.DEFINE_integer("num_steps", 0, "config.train.num_steps (0 = the config's 4,000 steps).")

TRAIN = [sys.executable, os.path.join(ROOT, "launch", "train.py"),
         "--config=" + os.path.join(ROOT, "configs", "zhou_gender.py"), "--config.parallel.backend=shard_map",
         "--config.data.batch_size=4", "--config.data.eval_batch_size=4", "--config.train.progress_bar=False"]


def one_run(workdir: str, timeout_s: int, env: dict) -> tuple[str, float, str | None]:
    """(outcome, seconds, final params_sha256) of one cluster run in ``workdir``."""
    overrides = ([f"--config.train.sync_every={_SYNC.value}"] if _SYNC.value else []) + (
        [f"--config.train.num_steps={_STEPS.value}"] if _STEPS.value else [])
    cmd = [sys.executable, os.path.join(ROOT, "launch", "local_cluster.py"), "--num_processes=2",
           "--devices_per_process=2", f"--timeout_s={timeout_s}", "--"] + TRAIN + overrides + [f"--workdir={workdir}"]
    t = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 60, env=env, cwd=ROOT)
        code, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:            # the launcher itself did not stop: count it as hung
        code, err = 124, "launcher did not stop"
    seconds = time.perf_counter() - t
    sha = None
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):
        shas = [json.loads(line)["params_sha256"] for line in open(path) if "params_sha256" in line]
        sha = shas[-1] if shas else None
    if code == 0 and sha is not None:
        return "completed", seconds, sha
    if code == 124:
        return "hung", seconds, None
    print(f"  failed (exit {code}): {err.strip().splitlines()[-1] if err.strip() else ''}", file=sys.stderr)
    return "failed", seconds, None


def main(argv):
    del argv
    base = {k: v for k, v in os.environ.items() if k != "PJRT_NPROC"}
    cores = str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    impls = {"jaxml": (base, _N.value), "xla_default_pool": (dict(base, PJRT_NPROC=cores), _PEER_N.value)}
    outcomes = {name: [] for name in impls}
    with tempfile.TemporaryDirectory(prefix="cluster_soak_") as tmp:
        for i in range(max(n for _, n in impls.values())):
            for name, (env, n) in impls.items():
                if i >= n:
                    continue
                outcome = one_run(os.path.join(tmp, f"{name}_{i}"), _TIMEOUT.value, env)
                outcomes[name].append(outcome)
                print(f"{name} run {i + 1}/{n}: {outcome[0]} in {outcome[1]:.1f} s", file=sys.stderr, flush=True)
    table, results = [], {}
    for name, runs in outcomes.items():
        if not runs:
            continue
        counts = {k: sum(o == k for o, _, _ in runs) for k in ("completed", "hung", "failed")}
        shas = {s for o, _, s in runs if o == "completed"}
        done_s = [s for o, s, _ in runs if o == "completed"]
        results[name] = 100 * counts["completed"] / len(runs)
        table.append((name, results[name],
                      f"{counts['completed']} completed / {counts['hung']} hung / {counts['failed']} failed of "
                      f"{len(runs)}; median {statistics.median(done_s) if done_s else float('nan'):.1f} s a run; "
                      f"{len(shas)} distinct params_sha256"))
    ratios = ({"jaxml/xla_default_pool": results["jaxml"] / results["xla_default_pool"]}
              if results.get("xla_default_pool") else {})
    timing.emit("cluster_soak", "% completed", True, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
