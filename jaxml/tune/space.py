"""Search spaces: ``"optimizer.lr=loguniform(1e-4,1e-1); model.dropout=uniform(0,0.5)"``, each entry
``FIELD=DIST(ARGS)`` with DIST one of

    uniform(a, b)       a <= v <= b, uniform              grid: linspace(a, b, K)
    loguniform(a, b)    log v uniform on [log a, log b]   grid: geomspace(a, b, K)      (0 < a < b)
    int(a, b)           integer, uniform on a..b          grid: K rounded linspace points (distinct)
    choice(v1, v2, ..)  one of the values                 grid: every value   (numbers, true/false, text)

and how a round samples it (random or grid) and how coarse-to-fine narrows it: for each range, with
[lo, hi] the span of the top-k values found so far (in log space for loguniform) and w the current
width, the new range is [lo - m, hi + m] with m = 0.25 (hi - lo) + 0.1 w, clipped to the original
range; a choice keeps the values the top-k used.
"""
from __future__ import annotations

import copy
import inspect
import itertools
import math
import re
from typing import NamedTuple, Sequence

import numpy as np

from jaxml import models

DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
_ENTRY = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*=\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)


class SpaceError(ValueError):
    """A --space string (or a field it names) is invalid; the message names the entry."""


class Dim(NamedTuple):
    field: str            # dotted config path, e.g. "optimizer.lr"
    kind: str             # one of DISTRIBUTIONS
    args: tuple           # (low, high) for ranges, the values for choice

    def __str__(self):
        return f"{self.field}={self.kind}({', '.join(map(str, self.args))})"


def _literal(text: str):
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def parse_space(text: str) -> list[Dim]:
    """Parse ``"f1=dist(args); f2=dist(args)"`` into Dims; raise SpaceError naming the bad entry."""
    entries = [e for e in re.split(r"[;\n]", text or "") if e.strip()]
    if not entries:
        raise SpaceError("empty search space: give --space='FIELD=DIST(ARGS); ...', e.g. "
                         "'optimizer.lr=loguniform(1e-4,1e-1)'")
    dims, seen = [], set()
    for entry in entries:
        m = _ENTRY.match(entry)
        if not m:
            raise SpaceError(f"space entry {entry.strip()!r}: expected FIELD=DIST(ARGS), e.g. "
                             f"'optimizer.lr=loguniform(1e-4,1e-1)'; distributions: {DISTRIBUTIONS}")
        field, kind, argtext = m.group(1), m.group(2), m.group(3)
        if kind not in DISTRIBUTIONS:
            raise SpaceError(f"space entry {entry.strip()!r}: unknown distribution {kind!r}; known: {DISTRIBUTIONS}")
        if field in seen:
            raise SpaceError(f"space entry {entry.strip()!r}: field {field!r} appears twice")
        seen.add(field)
        args = tuple(_literal(a) for a in argtext.split(",")) if argtext.strip() else ()
        if kind == "choice":
            if not args or any(a == "" for a in args):
                raise SpaceError(f"space entry {entry.strip()!r}: choice needs one or more comma-separated values")
            if len(set(map(repr, args))) != len(args):
                raise SpaceError(f"space entry {entry.strip()!r}: choice values repeat")
        else:
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
                raise SpaceError(f"space entry {entry.strip()!r}: {kind} takes two numbers (low, high), got "
                                 f"{argtext.strip()!r}")
            low, high = args
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise SpaceError(f"space entry {entry.strip()!r}: need low < high, got low={low}, high={high}")
            if kind == "loguniform" and low <= 0:
                raise SpaceError(f"space entry {entry.strip()!r}: loguniform needs 0 < low, got low={low}")
            if kind == "int":
                if not all(isinstance(a, int) for a in args):
                    raise SpaceError(f"space entry {entry.strip()!r}: int takes integer bounds, got {args}")
            else:
                args = (float(low), float(high))
        dims.append(Dim(field, kind, args))
    return dims


def _model_kwargs(config) -> set:
    """Keyword arguments the config's model builder accepts (a ``model.X`` the config does not set yet
    may still be swept: e.g. ``model.dropout`` of a widths-built MLP)."""
    entry = models.REGISTRY.get(config.get("model", {}).get("name", ""))
    return set(inspect.signature(entry.make).parameters) if entry else set()


def check_fields(space: Sequence[Dim], config) -> None:
    """Raise SpaceError unless every swept field exists in ``config`` (or is a keyword of the config's
    model builder, under ``model.``) and is a scalar."""
    for d in space:
        node, path = config, []
        for part in d.field.split("."):
            keys = list(node.keys()) if hasattr(node, "keys") else []
            if part not in keys:
                if path == ["model"] and d.field.count(".") == 1 and part in _model_kwargs(config):
                    node = None
                    break
                where = "config" + "".join(f".{p}" for p in path)
                raise SpaceError(f"space field {d.field!r}: {where} has no field {part!r}; it has {sorted(keys)}")
            node, path = node[part], path + [part]
        if hasattr(node, "keys") or isinstance(node, (tuple, list)):
            raise SpaceError(f"space field {d.field!r} is not a scalar (it holds {type(node).__name__})")


def apply_overrides(config, overrides: dict):
    """A deep copy of ``config`` with dotted fields set, coercing int <-> float to the field's type."""
    c = copy.deepcopy(config)
    for field, value in overrides.items():
        head, _, last = field.rpartition(".")
        node = c
        for part in filter(None, head.split(".")):
            node = node[part]
        if last not in node:                           # a model builder keyword the config leaves unset
            with node.unlocked():
                node[last] = value
            continue
        old = node[last]
        if isinstance(old, bool) or isinstance(value, bool):
            if not isinstance(old, bool) or not isinstance(value, bool):
                raise SpaceError(f"space field {field!r}: cannot set {old!r} to {value!r}")
        elif isinstance(old, float) and isinstance(value, (int, float)):
            value = float(value)
        elif isinstance(old, int) and isinstance(value, float):
            if not value.is_integer():
                raise SpaceError(f"space field {field!r} is an integer; got {value} (use int(a, b) or choice)")
            value = int(value)
        elif type(old) is not type(value) and old is not None:
            raise SpaceError(f"space field {field!r} holds a {type(old).__name__}; got {value!r}")
        node[last] = value
    return c


# ----------------------------------------------------------------------------------------- sampling
def sample_random(space: Sequence[Dim], n: int, rng: np.random.Generator) -> list[dict]:
    """n independent points, each {field: value}."""
    points = []
    for _ in range(n):
        p = {}
        for d in space:
            if d.kind == "uniform":
                p[d.field] = float(rng.uniform(*d.args))
            elif d.kind == "loguniform":
                p[d.field] = float(math.exp(rng.uniform(math.log(d.args[0]), math.log(d.args[1]))))
            elif d.kind == "int":
                p[d.field] = int(rng.integers(d.args[0], d.args[1] + 1))
            else:
                p[d.field] = d.args[int(rng.integers(len(d.args)))]
        points.append(p)
    return points


def grid_values(d: Dim, k: int) -> list:
    if d.kind == "choice":
        return list(d.args)
    if k < 1:
        raise SpaceError(f"grid points per range must be >= 1, got {k}")
    lo, hi = d.args
    if k == 1:
        mid = math.sqrt(lo * hi) if d.kind == "loguniform" else (lo + hi) / 2
        return [int(round(mid)) if d.kind == "int" else float(mid)]
    if d.kind == "loguniform":
        return [float(v) for v in np.geomspace(lo, hi, k)]
    if d.kind == "int":
        return sorted({int(round(v)) for v in np.linspace(lo, hi, k)})
    return [float(v) for v in np.linspace(lo, hi, k)]


def sample_grid(space: Sequence[Dim], k: int) -> list[dict]:
    """The Cartesian product of every dim's grid values (k per range)."""
    axes = [grid_values(d, k) for d in space]
    return [dict(zip([d.field for d in space], combo)) for combo in itertools.product(*axes)]


def narrow(original: Sequence[Dim], current: Sequence[Dim], top: Sequence[dict]) -> list[Dim]:
    """The next round's space around the points ``top`` (see the module docstring)."""
    out = []
    for d0, d in zip(original, current):
        values = [p[d.field] for p in top]
        if d.kind == "choice":
            out.append(Dim(d.field, d.kind, tuple(v for v in d.args if v in values) or d.args))
            continue
        to = math.log if d.kind == "loguniform" else float
        back = math.exp if d.kind == "loguniform" else float
        lo, hi = min(map(to, values)), max(map(to, values))
        (c_lo, c_hi), (o_lo, o_hi) = map(to, d.args), map(to, d0.args)
        margin = 0.25 * (hi - lo) + 0.1 * (c_hi - c_lo)
        new_lo, new_hi = max(o_lo, lo - margin), min(o_hi, hi + margin)
        if d.kind == "int":
            a, b = math.floor(new_lo), math.ceil(new_hi)
            out.append(Dim(d.field, d.kind, (a, b) if b > a else (d.args[0], d.args[1])))
        else:
            out.append(Dim(d.field, d.kind, (back(new_lo), back(new_hi))))
    return out


# ----------------------------------------------------------------------------------------- ranking
