"""A real 2-process JAX cluster on this machine (gloo collectives over localhost, 2 fake CPU devices
each): training equals the single-process 4-device run; a missing or killed peer makes the others fail
fast instead of hanging."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxml import parallel
from jaxml.cli import local_cluster
from jaxml.cli.common import load_config
from jaxml.kmeans import kmeans
from jaxml.train import train_and_evaluate
from tests.kmeans_cluster_worker import data
from tests.test_parallel import final_params  # same restore helper as the in-process checks

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOBS = f"{os.path.join(ROOT, 'configs', 'blobs_mlp.py')}:steps20"
TRAIN = [sys.executable, os.path.join(ROOT, "launch", "train.py"), f"--config={BLOBS}",
         "--config.train.progress_bar=False"]


def _restore_params(workdir):
    return final_params(workdir, load_config(BLOBS))


@pytest.mark.timeout(300)
def test_two_process_cluster_equals_single_process(tmp_path):
    procs = local_cluster.start(TRAIN + [f"--workdir={tmp_path / 'cluster'}"], 2, 2, stdout=subprocess.DEVNULL)
    assert local_cluster.wait(procs, timeout=240) == 0
    assert jax.device_count() == 4
    train_and_evaluate(load_config(BLOBS), str(tmp_path / "single"))
    pc, sc = _restore_params(str(tmp_path / "cluster"))
    ps, ss = _restore_params(str(tmp_path / "single"))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), pc, ps)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), sc, ss)
    with open(tmp_path / "cluster" / "metrics.jsonl") as f:
        recs = [json.loads(line) for line in f]
    assert recs[-1]["step"] == 20 and "params_sha256" in recs[-1]   # written once, by process 0


@pytest.mark.timeout(120)
def test_missing_peer_fails_within_the_timeout(tmp_path):
    env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{local_cluster.free_port()}", JAX_NUM_PROCESSES="2",
               JAX_PROCESS_ID="0", JAX_NUM_CPU_DEVICES="2")
    t = time.time()
    r = subprocess.run(TRAIN + [f"--workdir={tmp_path}", "--initialization_timeout=5"], env=env,
                       capture_output=True, text=True, timeout=100)
    assert r.returncode != 0
    assert time.time() - t < 90
    assert "joining a 2-process JAX cluster" in r.stderr            # what we were doing
    assert "JAX distributed service" in r.stderr                     # the runtime's reason (it aborts the process)


@pytest.mark.timeout(200)
def test_killed_peer_makes_the_survivor_exit(tmp_path):
    cmd = TRAIN + [f"--workdir={tmp_path}", "--config.train.num_steps=200000", "--config.train.checkpoint_every=0"]
    procs = local_cluster.start(cmd, 2, 2, stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (tmp_path / "metrics.jsonl").exists():
            assert all(p.poll() is None for p in procs), "a process ended before training started"
            time.sleep(0.1)
        assert (tmp_path / "metrics.jsonl").exists(), "training never started"
        procs[1].send_signal(signal.SIGKILL)
        t = time.time()
        code = procs[0].wait(timeout=150)
        assert code != 0
        assert time.time() - t < 150
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()


@pytest.mark.timeout(300)
def test_two_process_kmeans_equals_single_process(tmp_path):
    worker = os.path.join(ROOT, "tests", "kmeans_cluster_worker.py")
    log = tmp_path / "out.txt"
    with open(log, "w") as f:
        procs = local_cluster.start([sys.executable, worker], 2, 2, stdout=f)
        assert local_cluster.wait(procs, timeout=240) == 0
    result = json.loads(next(line for line in open(log) if line.startswith("{")))
    x = data()
    single = kmeans(x, 5, init=x[:5], max_iter=50, mesh=parallel.data_mesh())
    assert result["inertia"] == pytest.approx(float(single.inertia), rel=1e-5)
    np.testing.assert_allclose(np.array(result["centers"]), np.asarray(single.centers), atol=1e-4)
