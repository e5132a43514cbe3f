"""Profiling and utilisation: a ``jax.profiler`` trace of chosen steps, and each train record's FLOP rate and MFU.

``ProfileWindow``: with ``config.train.profile_steps = (start, stop)`` the steps start .. stop - 1 run inside
``jax.profiler.start_trace(<workdir>/profile)`` (TensorBoard's profile plugin opens it: ``tensorboard
--logdir=<workdir>``); the trace also stops when the loop ends early.

``Utilisation``: the FLOPs of one train step come from XLA's cost analysis of the driver's lowered step (all
devices together: a per-device program's count times the devices it runs on), counted once. Each train record
then gets ``step_time_s`` (wall time per step over the log window), ``flops_per_step``, ``tflops_per_s`` (achieved)
and ``mfu`` = achieved / peak, the peak of the device kind from ``PEAK_TFLOPS`` (dense matmul, per chip, for
the compute dtype; public spec sheets) times the devices; on a CPU or an unknown device the peak is one f32
matmul's measured rate on that device, measured once per process — an empirical ceiling, not a spec.
Why: step time alone does not say whether a change left the accelerator idle.
"""
from __future__ import annotations

import functools
import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

log = logging.getLogger("jaxml")

# Dense matmul TFLOP/s per chip from the vendors' spec sheets: {device_kind substring: {compute dtype: peak}}.
# GPUs' float32 is the non-tensor-core rate; TPUs run float32 matmuls as bfloat16 passes (listed as bf16 / 3).
PEAK_TFLOPS = {
    "H200": {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0},
    "H100": {"bfloat16": 989.0, "float16": 989.0, "float32": 67.0},
    "A100": {"bfloat16": 312.0, "float16": 312.0, "float32": 19.5},
    "TPU v4": {"bfloat16": 275.0, "float16": 275.0, "float32": 91.7},
    "TPU v5 lite": {"bfloat16": 197.0, "float16": 197.0, "float32": 65.7},
    "TPU v5e": {"bfloat16": 197.0, "float16": 197.0, "float32": 65.7},
}
TIMING_FIELDS = ("examples_per_s", "step_time_s", "tflops_per_s", "mfu", "peak_tflops")


@functools.cache
def measured_matmul_tflops(n: int = 512, repeats: int = 5) -> float:
    """The best f32 n x n matmul rate (TFLOP/s) of the default device, measured once per process. The operand is
    drawn by numpy: ``jax.random.normal`` would compile a program of its own (~0.4 s of every CPU run's start)."""
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e12


def peak_tflops(device, compute_dtype: str = "float32") -> tuple[float, str]:
    """(peak TFLOP/s of one ``device``, where it comes from)."""
    for kind, peaks in PEAK_TFLOPS.items():
        if kind.lower() in device.device_kind.lower():
            return peaks[compute_dtype], f"spec sheet {kind} {compute_dtype}"
    return measured_matmul_tflops(), f"measured f32 512^2 matmul on {device.device_kind} (not a spec)"


def step_flops(train_step, *args) -> float | None:
    """FLOPs of one call of the jitted/pmapped ``train_step`` on ``args``, all devices together (None when XLA's
    cost analysis has no count)."""
    lowered = train_step.lower(*args)
    cost = lowered.cost_analysis() or lowered.compile().cost_analysis()
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    flops = (cost or {}).get("flops")
    if flops is None or flops <= 0:
        return None
    return float(flops)


class Utilisation:
    """Counts the step's FLOPs once (``measure``) and turns a log window's wall time into record fields."""

    def __init__(self, compute_dtype: str = "float32", devices_per_step: int = 1, *, per_device_program: bool = True):
        """``devices_per_step``: how many devices run the step (the peak is multiplied by it, and the FLOPs of a
        ``per_device_program`` — shard_map, pmap — too; a GSPMD program is counted whole)."""
        self.flops = None
        self.measured = False
        self.devices = devices_per_step if per_device_program else 1
        peak, self.peak_source = peak_tflops(jax.devices()[0], compute_dtype)
        self.peak = peak * devices_per_step

    def measure(self, train_step, *args) -> None:
        if self.measured:
            return
        self.measured = True
        try:
            per_program = step_flops(train_step, *args)
        except Exception as e:  # noqa: BLE001 — utilisation is reported, never fatal
            log.info("no FLOP count for the train step (%s); records carry step time only", e)
            return
        if per_program is not None:
            self.flops = per_program * self.devices
            log.info("train step: %.4g FLOPs; MFU against %.4g TFLOP/s (%s x %d)", self.flops, self.peak,
                     self.peak_source, self.devices)

    def fields(self, steps: int, seconds: float) -> dict:
        step_time = seconds / max(steps, 1)
        out = {"step_time_s": step_time}
        if self.flops is not None:
            achieved = self.flops / step_time / 1e12
            out.update(flops_per_step=self.flops, tflops_per_s=achieved, mfu=achieved / self.peak,
                       peak_tflops=self.peak)
        return out


class ProfileWindow:
    """``at(step)`` before each step starts / stops a ``jax.profiler`` trace at ``profile_steps``; ``close()``
    stops a trace still running."""

    def __init__(self, profile_steps, workdir: str | None):
        steps = tuple(profile_steps or ())
        self.start, self.stop = steps if steps else (None, None)
        self.logdir = None if workdir is None else os.path.join(workdir, "profile")
        self.running = False

    def at(self, step: int) -> None:
        if self.start is None or self.logdir is None:
            return
        if step == self.start and not self.running:
            jax.profiler.start_trace(self.logdir)
            self.running = True
        elif step == self.stop and self.running:
            self.close()

    def close(self) -> None:
        if self.running:
            jax.profiler.stop_trace()
            self.running = False
