"""Dataset registry: ``build(config) -> pipeline.Splits`` dispatching on ``config.data.name``.

A builder reads its own fields of ``config.data`` and returns a training source (deterministic in
(config.seed, step)), evaluation arrays per split and the input shape of one example. Tasks add
theirs with ``register(name, builder)`` when their package (``jaxml.tasks.<task>``) is imported.
"""
from __future__ import annotations

from typing import Callable

from jaxml.data import pipeline

BUILDERS: dict[str, Callable[..., pipeline.Splits]] = {}


def register(name: str, builder: Callable[..., pipeline.Splits]) -> None:
    """Make ``config.data.name = name`` build its splits with ``builder(config)``."""
    BUILDERS[name] = builder


def build(config) -> pipeline.Splits:
    name = config.data.name
    if name not in BUILDERS:
        raise ValueError(f"config.data.name: unknown dataset {name!r}; known: {sorted(BUILDERS)} (a task registers "
                         "its datasets when its package, e.g. jaxml.tasks.<name>, is imported)")
    return BUILDERS[name](config)
