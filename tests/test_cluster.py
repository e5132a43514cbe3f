"""A real 2-process JAX cluster on this machine (gloo collectives over localhost, 2 fake CPU devices
each): training equals the single-process 4-device run; a run that dispatches far ahead of its devices
completes (it deadlocked with XLA:CPU's default thread pool); a missing or killed peer makes the others fail
fast instead of hanging; the launcher leaves no worker behind (SIGTERM, SIGKILL, its timeout, a dead peer) and
says in one line why it stopped. The launcher's output filter and the backend-probe filter are fast tests."""
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from jaxml import parallel
from jaxml.cli import local_cluster
from jaxml.cli.common import QuietBackendProbe, load_config
from jaxml.kmeans import kmeans
from jaxml.train import train_and_evaluate
from tests.kmeans_cluster_worker import data
from tests.restore import final_params

slow = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOBS = f"{os.path.join(ROOT, 'configs', 'blobs_mlp.py')}:steps20"
TRAIN = [sys.executable, os.path.join(ROOT, "launch", "train.py"), f"--config={BLOBS}",
         "--config.train.progress_bar=False"]
LAUNCHER = [sys.executable, os.path.join(ROOT, "launch", "local_cluster.py")]
ZHOU = [sys.executable, os.path.join(ROOT, "launch", "train.py"), f"--config={ROOT}/configs/zhou_gender.py",
        "--config.parallel.backend=shard_map", "--config.data.batch_size=4", "--config.data.eval_batch_size=4",
        "--config.train.progress_bar=False"]
LONG = ["--config.train.num_steps=2000000", "--config.train.checkpoint_every=0", "--config.train.log_every=100"]


def _restore_params(workdir):
    return final_params(workdir, load_config(BLOBS))


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kill_all(proc, pids) -> None:
    """Leave nothing of a launcher test running: the launcher and each worker still alive."""
    proc.kill()
    for p in pids:
        if _alive(p):
            os.kill(p, signal.SIGKILL)


def _start_launcher(args, workdir):
    """The launcher as a subprocess, its stderr in a file; returns (process, worker pids, stderr path) once it
    has said which pids it started."""
    err_path = workdir / "launcher.err"
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(LAUNCHER + args, stdout=subprocess.DEVNULL, stderr=open(err_path, "w"), text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if m := re.search(r"started \d+ processes \(pids ([\d, ]+)\)", err_path.read_text()):
            return proc, [int(p) for p in m.group(1).split(",")], err_path
        assert proc.poll() is None, err_path.read_text()
        time.sleep(0.1)
    raise AssertionError("the launcher never said which processes it started")


def _wait_for(path, timeout_s=150):
    deadline = time.time() + timeout_s
    while time.time() < deadline and not path.exists():
        time.sleep(0.1)
    assert path.exists(), f"{path} never appeared"


@slow
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


@slow
@pytest.mark.timeout(300)
def test_dispatching_far_ahead_does_not_deadlock(tmp_path):
    """400 steps of the tutorial with no sync: the host runs hundreds of programs ahead of the devices. With
    XLA:CPU's own pool size (PJRT_NPROC=2 here) this hung in 4 of 4 runs; initialize_distributed sizes the pool."""
    env = {k: v for k, v in os.environ.items() if k != "PJRT_NPROC"}
    cmd = ZHOU + [f"--workdir={tmp_path}", "--config.train.sync_every=1000000", "--config.train.num_steps=400"]
    procs = local_cluster.start(cmd, 2, 2, stdout=open(tmp_path / "out.txt", "w"), env=env)
    assert local_cluster.wait(procs, timeout=240) == 0, (tmp_path / "out.txt").read_text()[-3000:]
    with open(tmp_path / "metrics.jsonl") as f:
        recs = [json.loads(line) for line in f]
    assert recs[-1]["step"] == 400 and "params_sha256" in recs[-1]


@slow
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


@slow
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
        local_cluster.kill_all(procs)


@slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_signal_to_the_launcher_leaves_no_worker_alive(tmp_path, sig):
    """Training workers are gone soon after the launcher is signalled — SIGTERM forwarded: they save a checkpoint
    at one agreed step and exit 75 (jaxml/train/preemption.py); SIGKILL: the kernel ends them with the launcher —
    and the workdir stops changing."""
    workdir = tmp_path / "run"
    proc, pids, err = _start_launcher(["--grace_s=100", "--"] + ZHOU + LONG + [f"--workdir={workdir}"], tmp_path)
    try:
        _wait_for(workdir / "metrics.jsonl")
        assert all(_alive(p) for p in pids)
        proc.send_signal(sig)
        assert proc.wait(timeout=100) == (75 if sig == signal.SIGTERM else -9)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), f"workers still running: {[p for p in pids if _alive(p)]}"
        size = (workdir / "metrics.jsonl").stat().st_size
        time.sleep(2)
        assert (workdir / "metrics.jsonl").stat().st_size == size
        if sig == signal.SIGTERM:
            assert err.read_text().strip().splitlines()[-1] == (
                "local_cluster: got SIGTERM; forwarded it to the 2 processes; all exited with 75 (preempted, "
                "checkpoint saved: run the same command to resume)")
            assert os.listdir(workdir / "checkpoints") != []
    finally:
        _kill_all(proc, pids)


@slow
@pytest.mark.timeout(120)
def test_workers_ignoring_the_forwarded_signal_are_killed_after_the_grace(tmp_path):
    ignore = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "open(sys.argv[1] + os.environ['JAX_PROCESS_ID'], 'w').close(); time.sleep(300)")
    up = tmp_path / "up"
    proc, pids, err = _start_launcher(["--grace_s=1", "--", sys.executable, "-c", ignore, str(up)], tmp_path)
    try:
        _wait_for(tmp_path / "up0")
        _wait_for(tmp_path / "up1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        assert not any(_alive(p) for p in pids)
        assert err.read_text().strip().splitlines()[-1] == (
            "local_cluster: got SIGTERM; forwarded it to the 2 processes, SIGKILLed the 2 still running; none is left")
    finally:
        _kill_all(proc, pids)


@slow
@pytest.mark.timeout(120)
def test_launcher_timeout_kills_everything(tmp_path):
    t = time.time()
    proc, pids, err = _start_launcher(["--timeout_s=3", "--", sys.executable, "-c", "import time; time.sleep(300)"],
                                      tmp_path)
    assert proc.wait(timeout=60) == 124
    assert time.time() - t < 60
    assert not any(_alive(p) for p in pids)
    assert err.read_text().strip().splitlines()[-1] == (
        "local_cluster: timed out after 3 s (--timeout_s); SIGKILLed the 2 processes still running")


@slow
@pytest.mark.timeout(120)
def test_busy_port_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(LAUNCHER + [f"--port={port}", "--", sys.executable, "-c", "print('started')"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "started" not in r.stdout
        assert r.stderr.strip() == (f"local_cluster: port {port} is already in use on this host (another cluster, "
                                    "or a leftover worker?); pass another --port, or --port=0 for a free one")
        # process 0 started by hand on a busy port: one error line, not the runtime's segfault
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2",
                   JAX_PROCESS_ID="0", JAX_NUM_CPU_DEVICES="2")
        r = subprocess.run(TRAIN + [f"--workdir={tmp_path}"], env=env, capture_output=True, text=True, timeout=100)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: OSError: coordinator port {port} (--coordinator_address=127.0.0.1:{port}) is already in use on "
        "this host — another cluster, or a leftover worker, holds it; pick another port")
    assert "Fatal Python error" not in r.stderr


@slow
@pytest.mark.timeout(240)
def test_dead_peer_is_one_line_naming_it(tmp_path):
    workdir = tmp_path / "run"
    proc, pids, err = _start_launcher(["--"] + ZHOU + LONG + [f"--workdir={workdir}"], tmp_path)
    try:
        _wait_for(workdir / "metrics.jsonl")
        os.kill(pids[1], signal.SIGKILL)
        assert proc.wait(timeout=60) == 128 + signal.SIGKILL
        assert err.read_text().strip().splitlines()[-1] == (
            "local_cluster: process 1 was killed by SIGKILL; SIGKILLed the other 1")
        assert not any(_alive(p) for p in pids)
    finally:
        _kill_all(proc, pids)


# A worker that needs no JAX: argv[1] a flag file, argv[2 + i] what process i does — "leave": create the flag and
# exit 0 at once; "hang": sleep; else wait for the flag, 1 s more, then abort / exit 3 ("fail") / exit 0.
PEER = ("import os, sys, time; flag, act = sys.argv[1], sys.argv[2 + int(os.environ['JAX_PROCESS_ID'])]\n"
        "if act == 'leave': open(flag, 'w').close(); sys.exit(0)\n"
        "if act == 'hang': time.sleep(300)\n"
        "while not os.path.exists(flag): time.sleep(0.01)\n"
        "time.sleep(1); os.abort() if act == 'abort' else sys.exit(3 if act == 'fail' else 0)")
LEFT_EARLY = ("process 1 exited with 0 while 1 other was still running (a peer that leaves early, e.g. before a "
              "collective, leaves the others to hang or abort)")


@pytest.mark.timeout(120)
def test_a_worker_leaving_early_is_named_and_the_others_stopped(tmp_path):
    """Poor case of issue #32: a worker that exited 0 before the others left them to abort (SIGABRT, blamed on
    "another task") or hang; the launcher waited. Now it names the one that left, stops the rest after --grace_s
    and exits 1."""
    args = ["--grace_s=1", "--timeout_s=60", "--", sys.executable, "-c", PEER, str(tmp_path / "flag"), "hang", "leave"]
    proc, pids, err = _start_launcher(args, tmp_path)
    try:
        assert proc.wait(timeout=100) == 1, err.read_text()
        assert err.read_text().strip().splitlines()[-1] == (
            f"local_cluster: {LEFT_EARLY}; SIGKILLed the 1 still running after --grace_s=1 s")
        assert not any(_alive(p) for p in pids)
    finally:
        _kill_all(proc, pids)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("act, code, line", [
    ("abort", 128 + signal.SIGABRT, f"{LEFT_EARLY}; then process 0 was killed by SIGABRT"),
    ("fail", 3, "process 0 exited with 3"),     # its own error (JAX peers leave together): not blamed on process 1
    ("late", 0, None),                          # peers ending a moment apart, within the grace: a success
])
def test_after_a_peer_left_early_only_a_signal_death_is_blamed_on_it(tmp_path, capsys, act, code, line):
    procs = local_cluster.start([sys.executable, "-c", PEER, str(tmp_path / "flag"), act, "leave"], 2, 1,
                                stdout=open(tmp_path / "out.txt", "w"))
    assert local_cluster.wait(procs, timeout=60, grace_s=30) == code, (tmp_path / "out.txt").read_text()
    reported = capsys.readouterr().err.strip()
    assert reported == ("" if line is None else f"local_cluster: {line}")


@slow
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


# A survivor's output after its peer died (recorded from a 2-process run, addresses shortened).
SURVIVOR = """\
E1201 21:35:18.790807   26457 coordination_service.cc:1549] Use error polling to propagate the following error
E1201 21:35:18.791300   26468 coordination_service_agent.cc:289] Polled an error from coordination service.
F1201 21:35:18.791503   26468 client.h:80] Terminating process because the JAX distributed service detected errors.
*** Check failure stack trace: ***
    @     0x7f58a5040634  absl::lts_20260107::log_internal::LogMessage::SendToLog()
    @     0x7f58a11040ee  xla::CoordinationServiceAgent::SetError()
    @     0x7f58acaa71f5  (unknown)
Fatal Python error: Aborted

Thread 0x00007f58297ea6c0 (most recent call first):
  File "/usr/lib/python3.11/threading.py", line 327 in wait

Extension modules: yaml._yaml, jaxlib.cpu_feature_guard, numpy._core._multiarray_umath (total: 3)
[Gloo] Rank 0 is connected to 1 peer ranks. Expected number of connected peer ranks is : 1
train: step 400/1000 (40%), 251.3 step/s, 1.6 s, loss=0.0674
"""


def test_stack_filter_hides_native_stacks_and_keeps_the_reason():
    f = local_cluster.StackFilter()
    kept = [line for line in SURVIVOR.splitlines(keepends=True) if f.keep(line)]
    lines = SURVIVOR.splitlines(keepends=True)
    assert kept == lines[:3] + lines[-1:]
    assert f.hidden == len(lines) - 5                     # the gloo line is dropped, not counted
    assert f.reason == "Terminating process because the JAX distributed service detected errors."


def test_exit_codes_follow_the_shell_convention():
    assert [local_cluster.exit_status(c) for c in (0, 3, -signal.SIGKILL, -signal.SIGABRT)] == [0, 3, 137, 134]
    assert local_cluster.describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert local_cluster.describe_exit(2) == "exited with 2"


def test_backend_probe_line_is_dropped_and_other_lines_kept():
    probe = QuietBackendProbe()

    def record(level, msg):
        return logging.LogRecord("jax._src.xla_bridge", level, "xla_bridge.py", 849, msg, (), None)
    assert not probe.filter(record(logging.INFO, "Unable to initialize backend 'tpu': INTERNAL: Failed to open "
                                                 "libtpu.so: libtpu.so: cannot open shared object file"))
    assert probe.filter(record(logging.WARNING, "An NVIDIA GPU may be present on this machine, but ..."))
    assert probe.filter(record(logging.INFO, "Starting JAX distributed service on [::]:1234"))


@slow
@pytest.mark.timeout(120)
def test_launcher_on_cpu_prints_no_backend_probe(tmp_path):
    """At INFO verbosity a CPU-only run prints no "Unable to initialize backend 'tpu'" line (JAX's probe)."""
    r = subprocess.run(TRAIN + [f"--workdir={tmp_path}", "--verbosity=0", "--config.train.num_steps=2"],
                       capture_output=True, text=True, timeout=100, env={k: v for k, v in os.environ.items()
                                                                         if k != "JAX_PLATFORMS"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Unable to initialize backend" not in r.stderr
