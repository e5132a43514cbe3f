"""Test-time averaging over the symmetries of a square image: the dihedral group D4 (4 rotations by 90
degrees, each with or without a left-right mirror).

A view g = (k, mirror) acts on an image batch x f32[b, H, W, C] (H == W; row 0 at the top) as: mirror left-right
if ``mirror``, then rotate the picture by k quarter turns, each taking the top edge to the right edge: exact
permutations of the pixel grid, so a D4-invariant dataset maps into itself, and any objective registered with
view maps (``objectives.register(..., view_maps=...)``) can use ``config.model.test_views``.

On an image direction alpha (an angle from up towards the right, i.e. atan2(x, y) with y up), g acts as
``alpha -> s alpha + k pi/2`` with s = -1 for a mirror, +1 otherwise; so a prediction made on g x is mapped back
by ``alpha = s (beta - k pi/2)``: for a vector (cos beta, sin beta), rotate by -k pi/2, then negate the sine if
mirrored (:func:`directions_back`).

:func:`view_averaged` wraps a Model: in evaluation (``train=False``) ``apply`` runs the model once on the
``n_views`` transformed copies stacked along the batch axis (one call, n x the batch), maps each head's outputs
back with ``output_maps[head](y, k, mirror)`` and averages them:

    f_avg(x) = 1/|G| sum_{g in G} g^-1 . f(g . x)

which is exactly equivariant: f_avg(g x) = g . f_avg(x) for g in G. Training (``train=True``) passes straight
through; batch norm in evaluation uses running statistics, so stacking the views changes no view's output.
"""
from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp

from jaxml.models.base import Model

VIEW_COUNTS = (1, 4, 8)  # identity; the 4 rotations; rotations x mirror (all of D4)

OutputMap = Callable[[jax.Array, int, bool], jax.Array]  # (outputs of the view, k, mirror) -> outputs in x's frame


def dihedral_views(n_views: int) -> list[tuple[int, bool]]:
    """The views (k quarter turns top-to-right, mirror) used for ``n_views`` in VIEW_COUNTS, identity first."""
    if n_views not in VIEW_COUNTS:
        raise ValueError(f"n_views must be one of {VIEW_COUNTS}, got {n_views!r}")
    rotations = range(1 if n_views == 1 else 4)
    return [(k, False) for k in rotations] + ([(k, True) for k in rotations] if n_views == 8 else [])


def transform_images(x: jax.Array, k: int, mirror: bool) -> jax.Array:
    """g . x for x f32[b, H, W, C] (H == W): mirror left-right if ``mirror``, then k quarter turns top-to-right."""
    if x.ndim != 4 or x.shape[1] != x.shape[2]:
        raise ValueError(f"view transforms need square images [b, H, W, C], got shape {x.shape}")
    if mirror:
        x = x[:, :, ::-1]
    return jnp.rot90(x, k=-k, axes=(1, 2))


def directions_back(y: jax.Array, k: int, mirror: bool) -> jax.Array:
    """Maps image directions predicted on g . x back to x's frame. y f32[..., 2 p]: p (cos, sin) pairs of angles
    from up towards the right; beta -> s (beta - k pi/2) (an exact quarter-turn, no trigonometry)."""
    c, s = y[..., 0::2], y[..., 1::2]
    for _ in range(k % 4):          # beta - pi/2: (cos, sin) -> (sin, -cos)
        c, s = s, -c
    if mirror:
        s = -s
    return jnp.stack([c, s], axis=-1).reshape(y.shape)


def view_averaged(model: Model, n_views: int, output_maps: Mapping[str, OutputMap],
                  heads: Mapping[str, int] | None = None) -> Model:
    """``model`` whose evaluation averages its heads over ``n_views`` D4 views (see the module docstring).

    ``output_maps`` names, for every output head (``"out"`` for a single-head model), how its outputs on g . x
    map back to x's frame. ``heads`` ({name: size}, optional) checks now that every head has a map that takes
    every view (a map may refuse a mirror); otherwise a head without a map is an error at trace time."""
    views = dihedral_views(n_views)
    for name, size in (heads or {}).items():
        if name not in output_maps:
            raise ValueError(f"view averaging: no map back for output head {name!r}; known: {sorted(output_maps)}")
        for k, m in views:
            output_maps[name](jnp.zeros((1, int(size)), jnp.float32), k, m)
    if n_views == 1:
        return model

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None, **kwargs):
        if train:
            return model.apply(params, x, state=state, train=True, key=key, axis_name=axis_name, **kwargs)
        b = x.shape[0]
        stacked = jnp.concatenate([transform_images(x, k, m) for k, m in views], axis=0)
        out, new_state = model.apply(params, stacked, state=state, train=False, key=key, axis_name=axis_name,
                                     **kwargs)
        heads = out if isinstance(out, dict) else {"out": out}
        missing = sorted(set(heads) - set(output_maps))
        if missing:
            raise ValueError(f"view averaging: no map back for output head(s) {missing}; "
                             f"known: {sorted(output_maps)}")
        averaged = {}
        for name, y in heads.items():
            y = y.reshape((len(views), b) + y.shape[1:])
            averaged[name] = sum(output_maps[name](y[i], k, m) for i, (k, m) in enumerate(views)) / len(views)
        return (averaged if isinstance(out, dict) else averaged["out"]), new_state

    return model._replace(apply=apply)
