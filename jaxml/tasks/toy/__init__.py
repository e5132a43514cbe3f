"""Toy problems jaxml makes itself: the from-scratch tutorial's four people (``zhou_gender``), the GRU
adding problem (``adding``) and Gaussian blobs (``blobs``); importing this package registers their
dataset builders and the tutorial's ``zhou_predictions`` report."""
from __future__ import annotations

import jax
import numpy as np

from jaxml import data
from jaxml.data import pipeline
from jaxml.tasks.toy.datasets import ZHOU_QUERIES, adding_problem, gaussian_blobs, zhou_gender
from jaxml.train import reports

__all__ = ["ZHOU_QUERIES", "adding_problem", "gaussian_blobs", "zhou_gender"]


def build_zhou_gender(config) -> pipeline.Splits:
    arrays = zhou_gender()
    train = pipeline.ArraySource(arrays, config.data.batch_size, seed=config.seed,
                                 shuffle=config.data.get("shuffle", False))
    return pipeline.Splits(train=train, eval={"eval": arrays}, input_shape=(2,))


def build_adding(config) -> pipeline.Splits:
    """Fields: length, eval_size, steps_per_epoch; training sequences drawn afresh per (seed, step)."""
    length = int(config.data.length)
    eval_arrays = jax.device_get(adding_problem(jax.random.key(10_000 + config.seed), int(config.data.eval_size),
                                                length))
    train = pipeline.GeneratedSource(lambda key, n: adding_problem(key, n, length), config.data.batch_size,
                                     seed=config.seed, steps_per_epoch=int(config.data.get("steps_per_epoch", 1000)))
    return pipeline.Splits(train=train, eval={"eval": dict(eval_arrays)}, input_shape=(length, 2))


def build_blobs(config) -> pipeline.Splits:
    """Fields: num_classes, features, spread, data_seed, train_size, test_size."""
    d = config.data
    kw = dict(num_classes=int(d.get("num_classes", 4)), features=int(d.get("features", 8)),
              spread=float(d.get("spread", 1.0)))
    n_train, n_test = int(d.get("train_size", 1024)), int(d.get("test_size", 256))
    train = gaussian_blobs(int(d.get("data_seed", 0)), n_train, **kw)
    test = {k: v[-n_test:] for k, v in gaussian_blobs(int(d.get("data_seed", 0)), n_train + n_test, **kw).items()}
    return pipeline.Splits(train=pipeline.ArraySource(train, d.batch_size, seed=config.seed),
                           eval={"test": test}, input_shape=(kw["features"],))


def zhou_predictions(ctx: reports.Context) -> None:
    """The tutorial's closing lines: ``Emily: 0.9xx`` and ``Frank: 0.0xx``."""
    x = np.array(list(ZHOU_QUERIES.values()), np.float32)
    for name, p in zip(ZHOU_QUERIES, reports.predict(ctx, x)):
        print(f"{name}: {p:.3f}")


data.register("zhou_gender", build_zhou_gender)
data.register("adding", build_adding)
data.register("blobs", build_blobs)
reports.register("zhou_predictions", zhou_predictions)
