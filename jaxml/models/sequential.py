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

Remat (``remat=True``): the trunk runs as blocks — a weighted layer (dense, conv) and the layers after it up to
the next one — each under ``jax.checkpoint``, so the backward pass keeps only each block's input and recomputes
its inside (pre-activations, batch-norm intermediates, dropout masks). Gradients are unchanged.

Heads: ``heads={"name": n_outputs, ...}`` adds a dense layer per head on the trunk's output; with one
head named "out" the model returns an array, otherwise a dict of arrays keyed by head name.
Example — the report's digit CNN:
    ("conv:32:3", "act", "conv:64:3", "act", "bn", "dropout:0.25", "conv:64:3", "act", "maxpool:2",
     "bn", "flatten", "dense:128", "act"), heads={"out": 10}
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Sequence

import jax

from jaxml.models.base import Model
from jaxml.nn import activations, layers

_FIXED_ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear", "elu", "gelu", "softmax")


class Settings(NamedTuple):
    """What ``build`` fixes for every layer: names for messages and the model-wide options."""
    model: str
    act: Callable
    initializer: str
    bn_momentum: float
    conv_impl: str
    conv_padding: str


@dataclasses.dataclass
class Call:
    """One forward pass, as a layer's ``apply`` sees it; ``rate`` is the current dropout layer's rate."""
    params: dict
    state: dict
    new_state: dict
    train: bool
    key: jax.Array | None
    axis_name: str | None
    example_ids: jax.Array | None
    index: int = 0
    rate: float | None = None


@dataclasses.dataclass(frozen=True)
class Layer:
    """A layer kind. ``shape(settings, lname, in_shape, args) -> (plan args, out_shape)`` checks its input and
    sizes it; ``init(key, plan args, settings) -> params`` and ``state(plan args) -> state`` for layers that have
    them; ``apply(x, lname, plan args, settings, call) -> y``."""
    arity: tuple[int, ...]
    apply: Callable
    shape: Callable = lambda settings, lname, shape, args: (args, shape)
    init: Callable | None = None
    state: Callable | None = None
    number: type = int


def _needs(settings: Settings, lname: str, shape: tuple, ndim: int, what: str) -> None:
    if len(shape) != ndim:
        raise ValueError(f"model {settings.model}: {lname} needs {what}, got shape {shape}"
                         + ("; add 'flatten'" if ndim == 1 else ""))


def _dense_shape(settings, lname, shape, args):
    _needs(settings, lname, shape, 1, "a flat input")
    return (shape[0], args[0]), (args[0],)


def _conv_shape(settings, lname, shape, args):
    _needs(settings, lname, shape, 3, "an (h, w, c) input")
    stride, k = (args[2] if len(args) == 3 else 1), args[1]
    if settings.conv_padding == "SAME":
        out = (-(-shape[0] // stride), -(-shape[1] // stride), args[0])
    elif settings.conv_padding == "VALID":
        if min(shape[:2]) < k:
            raise ValueError(f"model {settings.model}: {lname} kernel {k} is larger than its input {shape[:2]}")
        out = ((shape[0] - k) // stride + 1, (shape[1] - k) // stride + 1, args[0])
    else:
        raise ValueError(f"model {settings.model}: conv_padding must be 'SAME' or 'VALID', "
                         f"got {settings.conv_padding!r}")
    return (shape[2], args[0], k, stride), out


def _maxpool_shape(settings, lname, shape, args):
    _needs(settings, lname, shape, 3, "an (h, w, c) input")
    return args, (shape[0] // args[0], shape[1] // args[0], shape[2])


def _dropout(x, lname, args, settings, call):
    return layers.dropout(x, call.rate, train=call.train, example_ids=call.example_ids,
                          key=None if call.key is None else jax.random.fold_in(call.key, call.index))


def _batch_norm(x, lname, args, settings, call):
    x, call.new_state[lname] = layers.batch_norm(call.params[lname], call.state[lname], x, train=call.train,
                                                 momentum=settings.bn_momentum, axis_name=call.axis_name)
    return x


# Every layer kind a spec may name: a new kind is one entry here.
LAYERS: dict[str, Layer] = {
    "dense": Layer((1,), shape=_dense_shape,
                   init=lambda key, a, s: layers.init_dense(key, *a, kernel_init=s.initializer),
                   apply=lambda x, lname, a, s, call: layers.dense(call.params[lname], x)),
    "conv": Layer((2, 3), shape=_conv_shape,
                  init=lambda key, a, s: layers.init_conv2d(key, a[0], a[1], a[2], kernel_init=s.initializer),
                  apply=lambda x, lname, a, s, call: layers.conv2d(call.params[lname], x, stride=a[3],
                                                                   padding=s.conv_padding, impl=s.conv_impl)),
    "maxpool": Layer((1,), shape=_maxpool_shape, apply=lambda x, lname, a, s, call: layers.max_pool(x, a[0])),
    "bn": Layer((0,), shape=lambda s, lname, shape, a: ((shape[-1],), shape),
                init=lambda key, a, s: layers.init_batch_norm(*a)[0],
                state=lambda a: layers.init_batch_norm(*a)[1], apply=_batch_norm),
    "dropout": Layer((1,), apply=_dropout, number=float),
    "flatten": Layer((0,), shape=lambda s, lname, shape, a: ((), (math.prod(shape),)),
                     apply=lambda x, lname, a, s, call: layers.flatten(x)),
    "act": Layer((0,), apply=lambda x, lname, a, s, call: s.act(x)),
    **{name: Layer((0,), apply=lambda x, lname, a, s, call, f=activations.get(name): f(x))
       for name in _FIXED_ACTIVATIONS},
}


def parse_token(token: str) -> tuple[str, tuple]:
    """'conv:32:3' -> ('conv', (32, 3)); raises a ValueError naming the bad token."""
    name, *args = token.strip().split(":")
    if name not in LAYERS:
        raise ValueError(f"layer spec {token!r}: unknown layer {name!r}; known: "
                         f"{sorted(k for k in LAYERS if k not in _FIXED_ACTIVATIONS) + list(_FIXED_ACTIVATIONS)}")
    kind = LAYERS[name]
    if len(args) not in kind.arity:
        raise ValueError(f"layer spec {token!r}: {name!r} takes {kind.arity} arguments, got {len(args)}")
    try:
        values = tuple(kind.number(a) for a in args)
    except ValueError:
        raise ValueError(f"layer spec {token!r}: arguments must be numbers") from None
    if kind.number is float and not all(0.0 <= v < 1.0 for v in values):
        raise ValueError(f"layer spec {token!r}: {name} rate must be in [0, 1)")
    if kind.number is int and any(v <= 0 for v in values):
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
          conv_impl: str = "auto", conv_padding: str = "SAME", remat: bool = False) -> Model:
    """Build a Model from a spec. ``input_shape`` excludes the batch axis, e.g. (28, 28, 1) or (784,)."""
    parsed = [parse_token(t) for t in spec]
    if not isinstance(remat, bool):
        raise ValueError(f"model {name}: remat must be True or False, got {remat!r}")
    settings = Settings(name, activations.get(activation), initializer, bn_momentum, conv_impl, conv_padding)
    if not heads or any(int(v) <= 0 for v in heads.values()):
        raise ValueError(f"heads must map names to positive output sizes, got {dict(heads)}")

    # Walk the spec once with shapes to name layers and size their parameters: plan = [(kind, name, args)].
    plan, shape, counts = [], tuple(input_shape), {}
    for kind, args in parsed:
        lname = f"{kind}_{counts.get(kind, 0)}"
        counts[kind] = counts.get(kind, 0) + 1
        plan_args, shape = LAYERS[kind].shape(settings, lname, shape, args)
        plan.append((kind, lname, plan_args))
    if len(shape) != 1:
        raise ValueError(f"model {name}: the trunk ends with shape {shape}; heads need a flat input ('flatten')")
    features = shape[0]
    head_items = sorted(heads.items())

    def init(key):
        params = {}
        keys = jax.random.split(key, len(plan) + len(head_items))
        for k, (kind, lname, args) in zip(keys, plan):
            if LAYERS[kind].init is not None:
                params[lname] = LAYERS[kind].init(k, args, settings)
        for k, (hname, n) in zip(keys[len(plan):], head_items):
            params[f"head_{hname}"] = layers.init_dense(k, features, int(n), kernel_init=initializer)
        return params

    def init_state():
        return {lname: LAYERS[kind].state(args) for kind, lname, args in plan if LAYERS[kind].state is not None}

    n_dropout = sum(kind == "dropout" for kind, _, _ in plan)
    # Remat blocks: [start, stop) ranges of plan, a new block at every weighted layer.
    starts = [0] + [i for i, (kind, _, _) in enumerate(plan) if i and kind in ("dense", "conv")]
    blocks = list(zip(starts, starts[1:] + [len(plan)])) if remat else [(0, len(plan))]

    def run(x, call, start, stop, dropout_rates, d):
        """Layers start .. stop - 1 of plan on x; ``d``: dropout layers before ``start``."""
        for i in range(start, stop):
            kind, lname, args = plan[i]
            if kind == "dropout":
                call.rate = args[0] if dropout_rates is None else dropout_rates[d]
                d += 1
            call.index = i
            x = LAYERS[kind].apply(x, lname, args, settings, call)
        return x

    def run_remat(x, call, start, stop, dropout_rates, d):
        def block(x):
            inner = dataclasses.replace(call, new_state={})
            return run(x, inner, start, stop, dropout_rates, d), inner.new_state
        x, new_state = jax.checkpoint(block)(x)
        call.new_state.update(new_state)
        return x

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
        call = Call(params, state, {}, train, key, axis_name, example_ids)
        if x.shape[1:] != tuple(input_shape) and x.ndim == 2 and len(input_shape) > 1:
            x = x.reshape((x.shape[0],) + tuple(input_shape))
        for start, stop in blocks:
            d = sum(kind == "dropout" for kind, _, _ in plan[:start])
            x = (run_remat if remat else run)(x, call, start, stop, dropout_rates, d)
        outs = {hname: layers.dense(params[f"head_{hname}"], x) for hname, _ in head_items}
        y = outs["out"] if list(outs) == ["out"] else outs
        return y, call.new_state

    return Model(name=name, init=init, init_state=init_state, apply=apply, extras=("dropout_rates", "example_ids"))
