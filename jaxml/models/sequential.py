"""Layer stacks described by short spec strings — the trunk of the MLP and CNN models.

A spec is a sequence of tokens, applied in order to x f32[batch, ...]:

    "dense:N"          dense layer to N features            params dense_i {w, b}
    "conv:C:K[:S]"     conv2d, C filters, KxK, stride S      params conv_i {w, b}  (padding: conv_padding)
    "maxpool:W"        W x W max pooling, stride W
    "bn"               batch norm over the last axis          params bn_i {scale, bias}, state bn_i {mean, var}
    "dropout:R"        inverted dropout with rate R (training only; masks per example, see apply)
    "flatten"          f32[batch, ...] -> f32[batch, features]
    "act"              the model's activation (config ``activation``)
    "relu", "tanh", "sigmoid", "linear", "elu", "gelu"    a fixed activation

Heads: ``heads={"name": n_outputs, ...}`` adds a dense layer per head on the trunk's output; with one
head named "out" the model returns an array, otherwise a dict of arrays keyed by head name.
Example — the report's digit CNN:
    ("conv:32:3", "act", "conv:64:3", "act", "bn", "dropout:0.25", "conv:64:3", "act", "maxpool:2",
     "bn", "flatten", "dense:128", "act"), heads={"out": 10}
"""
from __future__ import annotations

import math
from typing import Sequence

import jax

from jaxml.models.base import Model
from jaxml.nn import activations, layers

_FIXED_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "elu", "gelu", "softmax")


def parse_token(token: str) -> tuple[str, tuple]:
    """'conv:32:3' -> ('conv', (32, 3)); raises a ValueError naming the bad token."""
    name, *args = token.strip().split(":")
    arity = {"dense": (1,), "conv": (2, 3), "maxpool": (1,), "bn": (0,), "dropout": (1,),
             "flatten": (0,), "act": (0,)}
    if name in _FIXED_ACTIVATIONS:
        arity[name] = (0,)
    if name not in arity:
        raise ValueError(f"layer spec {token!r}: unknown layer {name!r}; known: "
                         f"{sorted(arity) + list(_FIXED_ACTIVATIONS)}")
    if len(args) not in arity[name]:
        raise ValueError(f"layer spec {token!r}: {name!r} takes {arity[name]} arguments, got {len(args)}")
    try:
        values = tuple(float(a) if name == "dropout" else int(a) for a in args)
    except ValueError:
        raise ValueError(f"layer spec {token!r}: arguments must be numbers") from None
    if name == "dropout" and not 0.0 <= values[0] < 1.0:
        raise ValueError(f"layer spec {token!r}: dropout rate must be in [0, 1)")
    if name != "dropout" and any(v <= 0 for v in values):
        raise ValueError(f"layer spec {token!r}: sizes must be positive")
    return name, values


def split_dropout(spec: Sequence[str]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """(the spec with every dropout rate replaced by "R", the rates in order): two specs with equal first
    parts build models of the same shapes that differ only in dropout rates."""
    parsed = [parse_token(t) for t in spec]
    blank = tuple("dropout:R" if kind == "dropout" else token for (kind, _), token in zip(parsed, spec))
    return blank, tuple(float(args[0]) for kind, args in parsed if kind == "dropout")


def build(name: str, spec: Sequence[str], input_shape: Sequence[int], heads: dict[str, int], *,
          activation: str = "relu", initializer: str = "glorot_uniform", bn_momentum: float = 0.99,
          conv_impl: str = "auto", conv_padding: str = "SAME") -> Model:
    """Build a Model from a spec. ``input_shape`` excludes the batch axis, e.g. (28, 28, 1) or (784,)."""
    parsed = [parse_token(t) for t in spec]
    act = activations.get(activation)
    if not heads or any(int(v) <= 0 for v in heads.values()):
        raise ValueError(f"heads must map names to positive output sizes, got {dict(heads)}")

    # Walk the spec once with shapes to name layers and size their parameters.
    plan, shape, counts = [], tuple(input_shape), {}
    for kind, args in parsed:
        idx = counts.get(kind, 0)
        counts[kind] = idx + 1
        lname = f"{kind}_{idx}"
        if kind == "dense":
            if len(shape) != 1:
                raise ValueError(f"model {name}: {lname} needs a flat input, got shape {shape}; add 'flatten'")
            plan.append((kind, lname, (shape[0], args[0])))
            shape = (args[0],)
        elif kind == "conv":
            if len(shape) != 3:
                raise ValueError(f"model {name}: {lname} needs an (h, w, c) input, got shape {shape}")
            stride, k = (args[2] if len(args) == 3 else 1), args[1]
            plan.append((kind, lname, (shape[2], args[0], k, stride)))
            if conv_padding == "SAME":
                shape = (-(-shape[0] // stride), -(-shape[1] // stride), args[0])
            elif conv_padding == "VALID":
                if min(shape[:2]) < k:
                    raise ValueError(f"model {name}: {lname} kernel {k} is larger than its input {shape[:2]}")
                shape = ((shape[0] - k) // stride + 1, (shape[1] - k) // stride + 1, args[0])
            else:
                raise ValueError(f"model {name}: conv_padding must be 'SAME' or 'VALID', got {conv_padding!r}")
        elif kind == "maxpool":
            if len(shape) != 3:
                raise ValueError(f"model {name}: {lname} needs an (h, w, c) input, got shape {shape}")
            plan.append((kind, lname, args))
            shape = (shape[0] // args[0], shape[1] // args[0], shape[2])
        elif kind == "bn":
            plan.append((kind, lname, (shape[-1],)))
        elif kind == "flatten":
            plan.append((kind, lname, ()))
            shape = (math.prod(shape),)
        else:  # dropout, act, fixed activations
            plan.append((kind, lname, args))
    if len(shape) != 1:
        raise ValueError(f"model {name}: the trunk ends with shape {shape}; heads need a flat input ('flatten')")
    features = shape[0]
    head_items = sorted(heads.items())

    def init(key):
        params = {}
        keys = jax.random.split(key, len(plan) + len(head_items))
        for k, (kind, lname, args) in zip(keys, plan):
            if kind == "dense":
                params[lname] = layers.init_dense(k, *args, kernel_init=initializer)
            elif kind == "conv":
                params[lname] = layers.init_conv2d(k, args[0], args[1], args[2], kernel_init=initializer)
            elif kind == "bn":
                params[lname] = layers.init_batch_norm(*args)[0]
        for k, (hname, n) in zip(keys[len(plan):], head_items):
            params[f"head_{hname}"] = layers.init_dense(k, features, int(n), kernel_init=initializer)
        return params

    def init_state():
        return {lname: layers.init_batch_norm(*args)[1] for kind, lname, args in plan if kind == "bn"}

    n_dropout = sum(kind == "dropout" for kind, _, _ in plan)

    def apply(params, x, *, state=None, train=False, key=None, axis_name=None, dropout_rates=None,
              example_ids=None):
        """The model contract's apply; ``dropout_rates`` (optional, f32[L] or a length-L sequence, may be
        traced) replaces the rates of the spec's L dropout layers, in order — a vmapped population of
        members that differ only in their dropout rates (jaxml/tune/population.py). ``example_ids``
        (optional int[batch], default arange(batch)): each example's index in the step's global batch; the
        dropout layer at spec position i masks example b from (fold_in(key, i), example_ids[b]) alone
        (layers.dropout_keep), so a batch split over devices trains as it does on one."""
        state = init_state() if state is None else state
        if dropout_rates is not None and len(dropout_rates) != n_dropout:
            raise ValueError(f"model {name}: dropout_rates has {len(dropout_rates)} entries, the spec has "
                             f"{n_dropout} dropout layers")
        d = 0
        new_state = {}
        if x.shape[1:] != tuple(input_shape) and x.ndim == 2 and len(input_shape) > 1:
            x = x.reshape((x.shape[0],) + tuple(input_shape))
        for i, (kind, lname, args) in enumerate(plan):
            if kind == "dense":
                x = layers.dense(params[lname], x)
            elif kind == "conv":
                x = layers.conv2d(params[lname], x, stride=args[3], padding=conv_padding, impl=conv_impl)
            elif kind == "maxpool":
                x = layers.max_pool(x, args[0])
            elif kind == "bn":
                x, new_state[lname] = layers.batch_norm(params[lname], state[lname], x, train=train,
                                                        momentum=bn_momentum, axis_name=axis_name)
            elif kind == "dropout":
                rate = args[0] if dropout_rates is None else dropout_rates[d]
                d += 1
                x = layers.dropout(x, rate, train=train, example_ids=example_ids,
                                   key=None if key is None else jax.random.fold_in(key, i))
            elif kind == "flatten":
                x = layers.flatten(x)
            elif kind == "act":
                x = act(x)
            else:
                x = activations.get(kind)(x)
        outs = {hname: layers.dense(params[f"head_{hname}"], x) for hname, _ in head_items}
        y = outs["out"] if list(outs) == ["out"] else outs
        return y, new_state

    return Model(name=name, init=init, init_state=init_state, apply=apply, extras=("dropout_rates", "example_ids"))
