"""A chain of blocks, rematerialised: each block under ``jax.checkpoint``, runs of identical blocks in a ``lax.scan``.

    h_{i+1}, out_i = block(h_i, dynamic_i, static_i)        i = 0 .. n-1

``chain(block, h, items, remat=False)`` is the plain Python loop. With ``remat=True`` the backward pass keeps
only each block's input h_i and recomputes the block's inside. Consecutive items with the same ``static`` and
the same shapes of ``dynamic`` (e.g. a Transformer's blocks, a ResNet stage after its first block) are stacked
and scanned: inside a loop body XLA cannot merge the recomputation back into the forward pass, which its CPU
pipeline does to checkpointed blocks written out one after another (then no memory is saved;
bench/remat_memory.py). Values equal the plain loop to float rounding; ``out_i`` come back as a list either way.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

Block = Callable[[jax.Array, Any, Any], tuple[jax.Array, Any]]


def _signature(item) -> tuple:
    static, dynamic = item
    leaves, tree = jax.tree.flatten(dynamic)
    return static, tree, tuple((jnp.shape(a), jnp.result_type(a)) for a in leaves)


def _groups(items: Sequence[tuple[Any, Any]]) -> list[list[tuple[Any, Any]]]:
    groups: list[list[tuple[Any, Any]]] = []
    for item in items:
        if groups and _signature(groups[-1][0]) == _signature(item):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def chain(block: Block, h: jax.Array, items: Sequence[tuple[Any, Any]], *, remat: bool = False
          ) -> tuple[jax.Array, list]:
    """Run ``block`` over ``items`` = [(static_i, dynamic_i)]: (h_n, [out_0 .. out_{n-1}])."""
    outs: list = []
    if not remat:
        for static, dynamic in items:
            h, out = block(h, dynamic, static)
            outs.append(out)
        return h, outs
    for group in _groups(items):
        static = group[0][0]
        body = jax.checkpoint(lambda c, d, s=static: block(c, d, s))
        if len(group) == 1:
            h, out = body(h, group[0][1])
            outs.append(out)
            continue
        stacked = jax.tree.map(lambda *a: jnp.stack(a), *(dynamic for _, dynamic in group))
        h, ys = jax.lax.scan(body, h, stacked)
        outs += [jax.tree.map(lambda y, i=i: y[i], ys) for i in range(len(group))]
    return h, outs
