"""Preemption-safe runs: a SIGTERM or SIGINT stops the loop at a step boundary, with a checkpoint.

``Watch`` (a context manager, or ``close()``) holds SIGTERM and SIGINT while a checkpointed run trains (main thread
only) and gives back exactly the disposition it found — JAX's own preemption notifier included, which
``jax.distributed.initialize`` installs for SIGTERM outside Python. The first signal only sets ``requested``;
``poll(step, due)`` after each step says whether to save now (``due``: the step-based interval; or
``config.train.checkpoint_every_s`` seconds since the last save) and whether to stop. The loop saves through its
usual path (finiteness check, digest) and raises ``Preempted``: "preempted at step N; checkpoint saved; resume with
the same command"; the launchers print that line and exit ``EXIT_PREEMPTED`` (75, sysexits' EX_TEMPFAIL: run it
again). A second signal raises ``Interrupted`` at once (exit 128 + the signal): checkpoints are written atomically,
so the last complete one stays intact. A run without a checkpointer (in memory) is not watched: Ctrl-C raises
``KeyboardInterrupt`` as usual.

Across processes a signal reaches one host, and clocks differ, yet every process must save the same step: every
``config.train.sync_every`` steps they all-gather (stop asked here, time due here) and stop when any asked, save on
the clock when process 0's says so. This agreement rather than ``multihost_utils.reached_preemption_sync_point``:
JAX's notifier hears SIGTERM only, and its stop step comes from a background protocol racing the host loop.
"""
from __future__ import annotations

import ctypes
import signal
import threading
import time
from typing import NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils

EXIT_PREEMPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """A second signal stopped the run at once; ``exit_code`` is 128 + the signal."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class Preempted(Interrupted):
    """The run stopped on a signal after saving its checkpoint at ``step``."""

    def __init__(self, step: int):
        super().__init__(f"preempted at step {step}; checkpoint saved; resume with the same command", EXIT_PREEMPTED)
        self.step = step


class Decision(NamedTuple):
    save: bool
    stop: bool


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _native_disposition(libc, signum: int):
    """The raw ``struct sigaction`` of ``signum`` (an opaque buffer), or None where it cannot be read."""
    if libc is None or not hasattr(libc, "sigaction"):
        return None
    buf = ctypes.create_string_buffer(512)        # larger than any platform's struct sigaction
    return buf if libc.sigaction(signum, None, buf) == 0 else None


class Watch:
    """Signals and the save clock of one training loop; ``enabled=False`` (a run without checkpoints, or outside the
    main thread): no handler, ``poll`` only passes ``due`` through. ``clock``: seconds, monotonic (tests fake it)."""

    def __init__(self, every_s: float = 0.0, sync_every: int = 1, *, enabled: bool = True, clock=None):
        self.every_s, self.sync_every = float(every_s), max(int(sync_every), 1)
        self.clock = time.monotonic if clock is None else clock
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal: int | None = None
        self.last_save = self.clock()
        self._previous: dict = {}
        if self.enabled:
            libc = _libc()
            for s in SIGNALS:
                if signal.getsignal(s) == signal.SIG_IGN:     # e.g. SIGINT of a shell's background job: stays so
                    continue
                native = _native_disposition(libc, s)
                self._previous[s] = (signal.signal(s, self._on_signal), native)
            self._libc = libc

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _on_signal(self, signum, frame) -> None:
        if self.signal is None:
            self.signal = signum
            return
        raise Interrupted(f"stopped at once on a second {signal.Signals(signum).name}; the checkpoints already "
                          "written are intact", 128 + signum)

    def poll(self, step: int, due: bool) -> Decision:
        """After ``step``: save when ``due``, when the clock says so, or to stop; every process decides alike."""
        if not self.enabled:
            return Decision(due, False)
        stop, timed = self.requested, self.every_s > 0 and self.clock() - self.last_save >= self.every_s
        if jax.process_count() > 1:
            if step % self.sync_every:
                stop, timed = False, False
            else:
                votes = np.asarray(multihost_utils.process_allgather(np.array([stop, timed], np.int32)))
                stop, timed = bool(votes[:, 0].any()), bool(votes[0, 1])
        save = due or timed or stop
        if save:
            self.last_save = self.clock()
        return Decision(save, stop)

    def close(self) -> None:
        """Give back the signals' dispositions as they were (a native handler too, through ``sigaction``)."""
        for s, (previous, native) in self._previous.items():
            if previous is not None:               # None: a handler installed outside Python
                signal.signal(s, previous)
            if native is not None:
                self._libc.sigaction(s, native, None)
        self._previous = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def watch(config, *, enabled: bool) -> Watch:
    """The ``Watch`` of a loop running ``config`` (``train.checkpoint_every_s``, ``train.sync_every``)."""
    return Watch(float(config.train.get("checkpoint_every_s", 0.0)), int(config.train.sync_every), enabled=enabled)
