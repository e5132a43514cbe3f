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
