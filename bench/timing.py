"""Shared benchmark plumbing: median timings, the matmul peak, and the closing JSON line.

Every bench prints a readable table and, as its very last line, one JSON object
``{"bench", "unit", "higher_is_better", "results": {impl: median}, "ratios": {"jaxml/PEER": r}}``
with ratios oriented so that > 1 means jaxml is better.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Callable

import jax


def median_seconds(run: Callable[[], object], *, repeats: int = 5, warmup: int = 1,
                   reduce: Callable = statistics.median) -> float:
    """Median (or ``reduce``, e.g. ``min`` for a best case) wall time of ``run()`` (which must block until
    its work is done) over ``repeats``."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return reduce(times)


def interleaved_medians(runs: dict[str, Callable[[], object]], *, repeats: int = 5, warmup: int = 1) -> dict:
    """Median wall time per implementation, timing them round-robin (A B C A B C ...) so slow drifts of
    a shared, noisy machine hit every implementation alike."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def matmul_peak_gflops(sizes=(1024, 2048), repeats: int = 7) -> float:
    """Best GFLOP/s of one f32 n x n matmul in XLA on the default device over ``sizes`` (fastest repeat, as a
    peak is a best case) — the ceiling dense layers approach."""
    best = 0.0
    for n in sizes:
        a = jax.random.normal(jax.random.key(0), (n, n))
        f = jax.jit(lambda a: a @ a)
        f(a).block_until_ready()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            f(a).block_until_ready()
            times.append(time.perf_counter() - t)
        best = max(best, 2 * n ** 3 / min(times) / 1e9)
    return best


def emit(bench: str, unit: str, higher_is_better: bool, results: dict, ratios: dict, table: list[tuple]) -> None:
    """Print the table (rows of (name, value, note)) then the JSON line."""
    width = max(len(r[0]) for r in table) + 2
    print(f"{'impl':<{width}}{unit:>14}  note")
    for name, value, note in table:
        print(f"{name:<{width}}{value:>14.2f}  {note}")
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.2f}x ({'higher' if higher_is_better else 'lower'} {unit} is better; > 1 = jaxml better)")
    print(json.dumps({"bench": bench, "unit": unit, "higher_is_better": higher_is_better,
                      "results": {k: round(v, 4) for k, v in results.items()},
                      "ratios": {k: round(v, 4) for k, v in ratios.items()}}))
