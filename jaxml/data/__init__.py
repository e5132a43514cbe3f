"""Dataset registry: ``build(config) -> pipeline.Splits`` dispatching on ``config.data.name``.

A builder reads its own fields of ``config.data`` and returns a training source (deterministic in
(config.seed, step)), evaluation arrays per split and the input shape of one example. Tasks add
theirs with ``register(name, builder)`` when their package (``jaxml.tasks.<task>``) is imported.
Your own arrays: ``from_arrays({split: (x, y)}, batch_size=..., seed=...)`` (jaxml/data/arrays.py), which
``jaxml.train.fit(config, data=...)`` trains on under ``config.data.name = "arrays"``.
"""
from __future__ import annotations

from typing import Callable

from jaxml.data import pipeline
from jaxml.data.arrays import arrays_sha256, check_arrays, check_split, check_targets, from_arrays

__all__ = ["ARRAYS", "BUILDERS", "arrays_sha256", "build", "check_arrays", "check_split", "check_targets",
           "from_arrays", "pipeline", "register"]



class _Registry(dict):
    """Dataset names, and families: a name ending in ':' (``"tfds:"``) stands for every name it begins
    (``"tfds:cifar10"``), so ``name in BUILDERS`` and ``BUILDERS[name]`` accept those too."""

    def _key(self, name):
        if not dict.__contains__(self, name) and isinstance(name, str) and ":" in name:
            family = name.split(":", 1)[0] + ":"
            if dict.__contains__(self, family):
                return family
        return name

    def __contains__(self, name):
        return dict.__contains__(self, self._key(name))

    def __getitem__(self, name):
        return dict.__getitem__(self, self._key(name))


BUILDERS: dict[str, Callable[..., pipeline.Splits]] = _Registry()


def register(name: str, builder: Callable[..., pipeline.Splits]) -> None:
    """Make ``config.data.name = name`` build its splits with ``builder(config)``; a name ending in ':'
    registers a family (``"tfds:"``: every ``"tfds:<dataset>"``)."""
    BUILDERS[name] = builder


def build(config) -> pipeline.Splits:
    name = config.data.name
    if name not in BUILDERS:
        raise ValueError(f"config.data.name: unknown dataset {name!r}; known: {sorted(BUILDERS)} (a task registers "
                         "its datasets when its package, e.g. jaxml.tasks.<name>, is imported)")
    return BUILDERS[name](config)


ARRAYS = "arrays"   # config.data.name of a run on arrays given to jaxml.train.fit(config, data=...)


def _arrays_given_to_fit(config) -> pipeline.Splits:
    raise ValueError(f"config.data.name = {ARRAYS!r} names arrays passed to jaxml.train.fit(config, data={{split: "
                     "(x, y)}}); there is nothing to build from the config alone: pass the arrays to fit, or set "
                     "config.data.name to a registered dataset")


register(ARRAYS, _arrays_given_to_fit)
