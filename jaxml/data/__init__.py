"""Dataset registry: ``build(config) -> pipeline.Splits`` dispatching on ``config.data.name``.

Each builder reads its own fields of ``config.data`` and returns a training source (deterministic in
(config.seed, step)), evaluation arrays per split and the input shape of one example.
"""
from __future__ import annotations

from typing import Callable

from jaxml.data import pipeline, toy


def _zhou_gender(config) -> pipeline.Splits:
    arrays = toy.zhou_gender()
    train = pipeline.ArraySource(arrays, config.data.batch_size, seed=config.seed,
                                 shuffle=config.data.get("shuffle", False))
    return pipeline.Splits(train=train, eval={"eval": arrays}, input_shape=(2,))


def _adding(config) -> pipeline.Splits:
    length = int(config.data.length)
    make = lambda key, n: toy.adding_problem(key, n, length)  # noqa: E731
    import jax
    eval_arrays = jax.device_get(toy.adding_problem(jax.random.key(10_000 + config.seed),
                                                    int(config.data.eval_size), length))
    train = pipeline.GeneratedSource(make, config.data.batch_size, seed=config.seed,
                                     steps_per_epoch=int(config.data.get("steps_per_epoch", 1000)))
    return pipeline.Splits(train=train, eval={"eval": dict(eval_arrays)}, input_shape=(length, 2))


def _blobs(config) -> pipeline.Splits:
    d = config.data
    kw = dict(num_classes=int(d.get("num_classes", 4)), features=int(d.get("features", 8)),
              spread=float(d.get("spread", 1.0)))
    train = toy.gaussian_blobs(int(d.get("data_seed", 0)), int(d.get("train_size", 1024)), **kw)
    test = toy.gaussian_blobs(int(d.get("data_seed", 0)), int(d.get("train_size", 1024)) + int(d.get("test_size", 256)),
                              **kw)
    test = {k: v[-int(d.get("test_size", 256)):] for k, v in test.items()}
    return pipeline.Splits(train=pipeline.ArraySource(train, d.batch_size, seed=config.seed),
                           eval={"test": test}, input_shape=(kw["features"],))


BUILDERS: dict[str, Callable] = {"zhou_gender": _zhou_gender, "adding": _adding, "blobs": _blobs}


def register(name: str, builder: Callable) -> None:
    BUILDERS[name] = builder


def build(config) -> pipeline.Splits:
    name = config.data.name
    if name not in BUILDERS:
        raise ValueError(f"config.data.name: unknown dataset {name!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[name](config)
