"""Input prefetch (``config.train.prefetch = depth``): the loop's batches built and placed on the devices ahead of
the step that uses them.

``Prefetcher(make, start, stop, depth)`` runs ``make(step)`` — the loop passes ``driver.put(batch(step))``:
reading, augmenting, sharding and transferring a batch — for step = start, start + 1, ... on one background
thread, at most ``depth`` batches ahead, in step order; ``get(step)`` returns them in that order. Batches are a
pure function of the step, so the run is bit-identical with and without (depth 0: ``make(step)`` on the caller's
thread, as before). Why: on an accelerator the host builds batch s + 1 while the device runs step s, instead of
the device waiting for it.

An exception in ``make`` is re-raised by the ``get`` of that step; ``close()`` (the loop calls it in ``finally``:
early stop, an error, the end) stops the thread, which never blocks for more than a poll interval, and joins it.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable

_POLL_S = 0.05


class Prefetcher:
    def __init__(self, make: Callable[[int], Any], start: int, stop: int, depth: int = 0):
        if depth < 0:
            raise ValueError(f"config.train.prefetch must be >= 0, got {depth}")
        self.make, self.depth = make, int(depth)
        self.thread = None
        if self.depth and start < stop:
            self.queue: queue.Queue = queue.Queue(maxsize=self.depth)
            self.stopping = threading.Event()
            self.thread = threading.Thread(target=self._produce, args=(start, stop), name="jaxml-prefetch",
                                           daemon=True)
            self.thread.start()

    def _produce(self, start: int, stop: int) -> None:
        for step in range(start, stop):
            try:
                item = (step, self.make(step), None)
            except BaseException as e:  # noqa: BLE001 — handed to the consumer, which re-raises it
                item = (step, None, e)
            while not self.stopping.is_set():
                try:
                    self.queue.put(item, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
            if self.stopping.is_set() or item[2] is not None:
                return

    def get(self, step: int):
        """The batch of ``step`` (steps must be asked for in order, from ``start``)."""
        if self.thread is None:
            return self.make(step)
        got, value, error = self.queue.get()
        if got != step:
            raise RuntimeError(f"prefetch: asked for the batch of step {step}, the next one built is step {got}")
        if error is not None:
            raise error
        return value

    def close(self) -> None:
        """Stop the producer (it may be blocked on a full queue) and wait for it."""
        if self.thread is None:
            return
        self.stopping.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=_POLL_S)
            except queue.Empty:
                pass
            self.thread.join(timeout=_POLL_S)
        self.thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
