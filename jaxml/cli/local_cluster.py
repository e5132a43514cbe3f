"""Start N local JAX processes that form one cluster, for tests and demos on a single machine.

    python launch/local_cluster.py --num_processes=2 --devices_per_process=2 -- \\
        python launch/train.py --config=configs/blobs_mlp.py --workdir=/tmp/cluster

Each process gets JAX_COORDINATOR_ADDRESS (a free localhost port), JAX_NUM_PROCESSES, JAX_PROCESS_ID and
JAX_NUM_CPU_DEVICES in its environment; jaxml's launchers join the cluster when these are set. Output
lines are prefixed with the process index. If one process fails, the others are stopped with SIGKILL
(after ``jax.distributed.initialize`` JAX ignores SIGTERM) and the exit code is the failure's.
``start`` and ``wait`` are the same from Python (tests/test_cluster.py).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import app, flags

from jaxml.cli import runner

FLAGS = flags.FLAGS


def define_flags() -> None:
    """--num_processes, --devices_per_process, --timeout. ``run`` defines them, not the import: this module's
    ``--num_processes`` would clash with the cluster flag of that name (``common``) in a process importing both."""
    flags.DEFINE_integer("num_processes", 2, "Processes to start.")
    flags.DEFINE_integer("devices_per_process", 2, "Fake CPU devices per process.")
    flags.DEFINE_integer("timeout", 0, "Kill everything after this many seconds (0 = no limit).")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], num_processes: int, devices_per_process: int, *, port: int | None = None,
          stdout=None) -> list[subprocess.Popen]:
    """Start the processes (without waiting). ``stdout=None`` prefixes and relays their output."""
    port = port or free_port()
    procs = []
    for i in range(num_processes):
        env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(num_processes),
                   JAX_PROCESS_ID=str(i), JAX_NUM_CPU_DEVICES=str(devices_per_process), PYTHONUNBUFFERED="1")
        p = subprocess.Popen(command, env=env, stdout=subprocess.PIPE if stdout is None else stdout,
                             stderr=subprocess.STDOUT, text=True)
        if stdout is None:
            threading.Thread(target=_relay, args=(p, i), daemon=True).start()
        procs.append(p)
    return procs


def _relay(proc: subprocess.Popen, index: int) -> None:
    for line in proc.stdout:
        sys.stdout.write(f"[p{index}] {line}")
        sys.stdout.flush()


def wait(procs: list[subprocess.Popen], timeout: float = 0) -> int:
    """Wait for all; on the first failure (or the timeout) SIGKILL the rest. Returns the exit code."""
    deadline = time.time() + timeout if timeout else None
    while True:
        codes = [p.poll() for p in procs]
        failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
        if failed or (deadline and time.time() > deadline):
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
            for p in procs:
                p.wait()
            if failed:
                i, c = failed[0]
                print(f"local_cluster: process {i} exited with {c}; stopped the others", file=sys.stderr)
                return c
            print(f"local_cluster: timed out after {timeout} s; killed all processes", file=sys.stderr)
            return 124
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.05)


def main(argv):
    command = argv[1:]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise app.UsageError("give the command to run after --")
    sys.exit(wait(start(command, FLAGS.num_processes, FLAGS.devices_per_process), FLAGS.timeout))


def run():
    define_flags()
    runner.run(main)


if __name__ == "__main__":
    run()
