"""The training state: one pytree holding everything a resumed run needs.

Randomness is not stored: the key of step s is ``fold_in(key(config.seed), s)``, so the state is
(step, params, model_state, opt_state) and a restored state continues bit-identically.
"""
from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class TrainState(NamedTuple):
    step: jax.Array          # int32[] — number of optimizer steps taken
    params: Any              # model parameters (nested dict)
    model_state: Any         # batch-norm statistics etc. ({} when none)
    opt_state: Any           # optax state


# A program that runs once (a run's first state, a population's members) is compiled at LLVM -O1 on CPU: XLA:CPU
# spends most of an init's compile time optimising the threefry hash, which -O1 skips (2-4x faster compiles).
# The bits are the default build's: integer hashing and IEEE arithmetic without fast-math
# (tests/test_train.py::test_the_run_once_build_of_the_first_state_is_bit_identical_for_every_model).
RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 1}


def run_once_options() -> dict | None:
    """``compiler_options`` for a jitted program that runs once: ``RUN_ONCE_OPTIONS`` on CPU, None elsewhere."""
    return dict(RUN_ONCE_OPTIONS) if jax.default_backend() == "cpu" else None


def run_once(fn, **jit_kwargs):
    """``jax.jit(fn, **jit_kwargs)()`` built with ``run_once_options()``: a program of no arguments called once."""
    return jax.jit(fn, compiler_options=run_once_options(), **jit_kwargs)()


def initial_state(model, optimizer, seed: int) -> TrainState:
    """A run's first state: step 0, ``model.init(key(seed))``, ``model.init_state()`` and the optimizer's state
    (traceable: drivers jit, shard or pmap it; ``jaxml.train.init_state`` jits it)."""
    params = model.init(jax.random.key(seed))
    return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), optimizer.init(params))


def params_sha256(params) -> str:
    """SHA-256 over every parameter's bytes (C order) in the fixed leaf order of sorted dict keys,
    each leaf prefixed by its path, dtype and shape — "same result" checkable from outside."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        arr = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{jax.tree_util.keystr(path)}:{arr.dtype}:{arr.shape};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()
