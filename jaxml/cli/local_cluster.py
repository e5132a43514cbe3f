"""Start N local JAX processes that form one cluster, for tests and demos on a single machine.

    python launch/local_cluster.py --num_processes=2 --devices_per_process=2 -- \\
        python launch/train.py --config=configs/blobs_mlp.py --workdir=/tmp/cluster

Each process gets JAX_COORDINATOR_ADDRESS (``--port``, default a free localhost port), JAX_NUM_PROCESSES,
JAX_PROCESS_ID and JAX_NUM_CPU_DEVICES in its environment; jaxml's launchers join the cluster when these are set.
Output lines are prefixed with the process index. The launcher never leaves a worker behind:

- a process that fails ends the others (SIGKILL: after ``jax.distributed.initialize`` JAX's preemption notifier
  takes SIGTERM), and one line names it and how it ended; the exit code is its code (128 + N for a signal N);
- a process that exits 0 while others still run (it left early, e.g. before a collective, so they hang or
  abort) is named in one line; the others are SIGKILLed if still running ``--grace_s`` later, exit code 1;
- ``--timeout_s`` (default 6 h; 0 = none) kills them all and exits 124;
- SIGTERM, SIGINT or SIGHUP to the launcher is forwarded to the workers: a training run (``launch/train.py``)
  agrees on a stop step, saves a checkpoint there and exits 75. Workers still running ``--grace_s`` later are
  SIGKILLed (a second signal kills at once). Exit code: the workers' own when all ended alike (75: preempted,
  resume with the same command), else 128 + the signal;
- the launcher itself dying, even by SIGKILL, takes the workers with it (Linux: ``PR_SET_PDEATHSIG``);
- a missing program or a busy ``--port`` is refused before anything starts, in one line.

Without ``--verbose`` the relayed output hides native stack dumps (a runtime check failure's frames, Python's
"Fatal Python error" thread dump) and gloo's connection lines; the one-line report says how many lines it hid.
``start`` and ``wait`` are the same from Python (tests/test_cluster.py).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from absl import app, flags

from jaxml.cli import runner
from jaxml.ports import free_port, port_is_free

FLAGS = flags.FLAGS
DEFAULT_TIMEOUT_S = 6 * 3600
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PREEMPTED = 75   # a training process that saved its checkpoint on a signal (jaxml/train/preemption.py)


def define_flags() -> None:
    """The launcher's flags. ``run`` defines them, not the import: this module's ``--num_processes`` would clash
    with the cluster flag of that name (``common``) in a process importing both."""
    flags.DEFINE_integer("num_processes", 2, "Processes to start.", lower_bound=1)
    flags.DEFINE_integer("devices_per_process", 2, "Fake CPU devices per process.", lower_bound=1)
    flags.DEFINE_integer("timeout_s", DEFAULT_TIMEOUT_S, "Kill everything after this many seconds (0 = no limit).",
                         lower_bound=0)
    flags.DEFINE_float("grace_s", 10.0, "Seconds between forwarding SIGTERM/SIGINT to the workers and SIGKILL.",
                       lower_bound=0)
    flags.DEFINE_integer("port", 0, "Coordinator port on 127.0.0.1 (0 = pick a free one).", lower_bound=0,
                         upper_bound=65535)
    flags.DEFINE_bool("verbose", False, "Relay everything the workers print, native stack dumps included.")


class ClusterError(RuntimeError):
    """The cluster cannot start; the message is the one line to show."""


def signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def describe_exit(code: int) -> str:
    """'exited with 1' / 'was killed by SIGKILL' for a Popen return code."""
    return f"was killed by {signal_name(-code)}" if code < 0 else f"exited with {code}"


def exit_status(code: int) -> int:
    """The shell's convention: a process killed by signal N ends with status 128 + N."""
    return 128 - code if code < 0 else code


class StackFilter:
    """Decides, line by line, what of a worker's output to relay without ``--verbose``: it hides native stack
    dumps (absl's ``*** Check failure stack trace: ***`` and its ``@ 0x...`` frames; Python's ``Fatal Python
    error`` dump up to its ``Extension modules:`` line) and gloo's ``[Gloo] Rank ... connected`` lines, and
    keeps the first line of a fatal message (``F1201 12:00:00 ... file.cc:80] Terminating ...``) as ``reason``;
    ``hidden`` counts the stack lines."""

    FRAME = re.compile(r"^\s*@\s+0x[0-9a-f]+")
    FATAL = re.compile(r"^F\d{4} [\d:.]+\s+\d+ \S+:\d+\] (.*)")
    DUMP = ("Current thread 0x", "Thread 0x", "  File ", "  <no Python frame>", "Extension modules:")

    def __init__(self):
        self.hidden, self.reason, self._in_python_dump = 0, None, False

    def keep(self, line: str) -> bool:
        text = line.rstrip("\n")
        if self._in_python_dump:
            self._in_python_dump = text == "" or text.startswith(self.DUMP)
            if self._in_python_dump:
                self._in_python_dump = not text.startswith("Extension modules:")
                self.hidden += 1
                return False
        if text.startswith("Fatal Python error:"):
            self._in_python_dump = True
            self.reason = self.reason or text
        elif m := self.FATAL.match(text):
            self.reason = self.reason or m.group(1)
            return True
        elif text.startswith("[Gloo] Rank "):
            return False
        elif not (text.startswith("*** Check failure stack trace") or self.FRAME.match(text)):
            return True
        self.hidden += 1
        return False


class Worker(subprocess.Popen):
    """One process of the cluster: its index, and (when the launcher relays its output) the relay thread and the
    filter that saw its lines. On Linux it runs ``command`` through ``DEATH_SHIM``."""

    def __init__(self, command, index: int, env: dict, stdout):
        if sys.platform.startswith("linux"):
            command = [sys.executable, "-c", DEATH_SHIM, str(os.getpid()), *command]
        super().__init__(command, env=env, stdout=subprocess.PIPE if stdout is None else stdout,
                         stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        self.index, self.filter, self.relay = index, StackFilter(), None


# Asks the kernel to SIGKILL the process when the launcher dies, however it dies (PR_SET_PDEATHSIG, which
# survives exec), ends it if the launcher is already gone, then execs the command. A shim rather than a
# ``preexec_fn``: that would make Popen fork() a process that may hold JAX's threads.
DEATH_SHIM = ("import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9); "
              "os.getppid() == int(sys.argv[1]) or os._exit(1); os.execvp(sys.argv[2], sys.argv[2:])")


def start(command: list[str], num_processes: int, devices_per_process: int, *, port: int | None = None,
          stdout=None, verbose: bool = False, env: dict | None = None) -> list[Worker]:
    """Start the processes (without waiting), with ``env`` (default: this process's environment) plus the
    cluster's variables. ``stdout=None`` relays their output, prefixed ``[pI]`` and (unless ``verbose``) filtered
    by ``StackFilter``; a file object receives it raw. A missing program or a busy ``port`` raises ``ClusterError``
    before any process starts."""
    if not command or shutil.which(command[0]) is None:
        raise ClusterError(f"cannot run {command[0] if command else ''!r}: no such program")
    if port and not port_is_free(port):
        raise ClusterError(f"port {port} is already in use on this host (another cluster, or a leftover worker?); "
                           "pass another --port, or --port=0 for a free one")
    port = port or free_port()
    procs = []
    try:
        for i in range(num_processes):
            worker_env = dict(os.environ if env is None else env, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                              JAX_NUM_PROCESSES=str(num_processes), JAX_PROCESS_ID=str(i),
                              JAX_NUM_CPU_DEVICES=str(devices_per_process), PYTHONUNBUFFERED="1")
            procs.append(Worker(command, i, worker_env, stdout))
    except BaseException:
        kill_all(procs)
        raise
    if stdout is None:
        for p in procs:
            p.relay = threading.Thread(target=_relay, args=(p, verbose), daemon=True)
            p.relay.start()
    return procs


def _relay(proc: Worker, verbose: bool) -> None:
    for line in proc.stdout:
        if verbose or proc.filter.keep(line):
            sys.stdout.write(f"[p{proc.index}] {line}")
            sys.stdout.flush()


def kill_all(procs) -> None:
    """SIGKILL every process still running and reap them all."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        p.wait()


def _report(message: str) -> None:
    print(f"local_cluster: {message}", file=sys.stderr, flush=True)


def _first_failure(procs, codes):
    """The process to blame among those that failed: a survivor aborting after its peer died comes last."""
    failed = [(p, c) for p, c in zip(procs, codes) if c not in (None, 0)]
    failed.sort(key=lambda pc: pc[1] == -signal.SIGABRT)
    return failed[0] if failed else None


def _left_early(proc: Worker, others: int) -> str:
    """The start of the report on a process that exited 0 while ``others`` still ran."""
    return (f"process {proc.index} exited with 0 while {others} other{'s were' if others != 1 else ' was'} still "
            "running (a peer that leaves early, e.g. before a collective, leaves the others to hang or abort)")


def wait(procs: list[Worker], timeout: float = DEFAULT_TIMEOUT_S, *, grace_s: float = 10.0) -> int:
    """Wait for all; on the first failure, the timeout (seconds, 0 = none) or a forwarded signal, stop the rest.
    A process exiting 0 while others run gives them ``grace_s`` to end alike (JAX workers leave together through
    the shutdown barrier, a moment apart), then SIGKILLs them; one of them killed by a signal meanwhile (the
    runtime's abort) is reported after the peer that left early. Returns the exit status (see the module
    docstring) after one line saying why it stopped early."""
    deadline = time.monotonic() + timeout if timeout else None
    received: list[int] = []
    kill_at = None
    left = None     # (the first process that exited 0 while others ran, when it was seen, how many others ran)

    def on_signal(signum, frame):
        received.append(signum)

    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, on_signal) for s in FORWARDED} if in_main else {}
    try:
        while True:
            if received and kill_at is None:
                signum = received[0]
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signum)
                kill_at = time.monotonic() + grace_s
            if received and (len(received) > 1 or time.monotonic() >= kill_at or all(p.poll() is not None
                                                                                       for p in procs)):
                alive = sum(p.poll() is None for p in procs)
                kill_all(procs)
                _join_relays(procs)
                ended = {p.returncode for p in procs}
                if not alive and len(ended) == 1:           # they all stopped by themselves, alike (75: preempted)
                    code = exit_status(ended.pop())
                    _report(f"got {signal_name(received[0])}; forwarded it to the {len(procs)} processes; all "
                            f"exited with {code}" + ("" if code != PREEMPTED else
                                                     " (preempted, checkpoint saved: run the same command to resume)"))
                    return code
                _report(f"got {signal_name(received[0])}; forwarded it to the {len(procs)} processes"
                        + (f", SIGKILLed the {alive} still running" if alive else "") + "; none is left")
                return 128 + received[0]
            codes = [p.poll() for p in procs]
            if left is None and 0 in codes and None in codes:
                left = (procs[codes.index(0)], time.monotonic(), sum(c is None for c in codes))
            if not received and (failure := _first_failure(procs, codes)) is not None:
                p, code = failure
                others = sum(c is None for c in codes)
                kill_all(procs)
                _join_relays(procs)
                blame = left is not None and code < 0      # the runtime's abort after its peer left, not an error
                _report((f"{_left_early(left[0], left[2])}; then " if blame else "")
                        + f"process {p.index} {describe_exit(code)}"
                        + (f" ({p.filter.reason})" if p.filter.reason else "")
                        + (f"; SIGKILLed the other {others}" if others else "")
                        + (f"; hid {p.filter.hidden} lines of native stack (--verbose shows them)"
                           if p.filter.hidden > 0 and p.relay is not None else ""))
                return exit_status(code)
            if not received and left is not None and time.monotonic() >= left[1] + grace_s:
                alive = sum(c is None for c in codes)
                kill_all(procs)
                _join_relays(procs)
                _report(f"{_left_early(left[0], left[2])}; SIGKILLed the {alive} still running after --grace_s="
                        f"{grace_s:g} s")
                return 1
            if not received and deadline is not None and time.monotonic() > deadline:
                alive = sum(c is None for c in codes)
                kill_all(procs)
                _join_relays(procs)
                _report(f"timed out after {timeout:g} s (--timeout_s); SIGKILLed the {alive} processes still running")
                return 124
            if all(c == 0 for c in codes):
                _join_relays(procs)
                return 0
            time.sleep(0.05)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if any(p.poll() is None for p in procs):       # an exception (or a signal handler raising) got us here
            kill_all(procs)


def _join_relays(procs, timeout_s: float = 5.0) -> None:
    """Let the relay threads print what the processes wrote before they ended."""
    for p in procs:
        if p.relay is not None:
            p.relay.join(timeout_s)


def main(argv):
    command = argv[1:]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise app.UsageError("give the command to run after --")
    try:
        procs = start(command, FLAGS.num_processes, FLAGS.devices_per_process, port=FLAGS.port,
                      verbose=FLAGS.verbose)
    except ClusterError as e:
        _report(str(e))
        sys.exit(1)
    _report(f"started {len(procs)} processes (pids {', '.join(str(p.pid) for p in procs)}); "
            f"timeout {FLAGS.timeout_s or 'none'} s")
    sys.exit(wait(procs, FLAGS.timeout_s, grace_s=FLAGS.grace_s))


def run():
    define_flags()
    runner.run(main)


if __name__ == "__main__":
    run()
