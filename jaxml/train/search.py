"""Hyperparameter search: search spaces, grid and random ("coarse to fine") rounds, ranking, tables.

A space is written ``"optimizer.lr=loguniform(1e-4,1e-1); model.dropout=uniform(0,0.5)"``; each entry
is ``FIELD=DIST(ARGS)`` with DIST one of

    uniform(a, b)       a <= v <= b, uniform              grid: linspace(a, b, K)
    loguniform(a, b)    log v uniform on [log a, log b]   grid: geomspace(a, b, K)      (0 < a < b)
    int(a, b)           integer, uniform on a..b          grid: K rounded linspace points (distinct)
    choice(v1, v2, ..)  one of the values                 grid: every value   (numbers, true/false, text)

Coarse to fine: round r + 1 samples (random) or grids (grid) a narrowed space. For each range, with
[lo, hi] the span of the top-k values found so far (in log space for loguniform) and w the current
width, the new range is [lo - m, hi + m] with m = 0.25 (hi - lo) + 0.1 w, clipped to the original
range; a choice keeps the values the top-k used. ``coarse_to_fine(space, evaluate, ...)`` drives the
rounds with any ``evaluate(round, points) -> [TrialOutcome]``; ``run_sweep`` plugs in real training —
one vmapped population per round where the swept fields allow it (``train/population.py``), else one
``train_and_evaluate`` per trial — and writes the ranked ``results.csv`` / ``results.md``.
"""
from __future__ import annotations

import copy
import csv
import itertools
import json
import math
import os
import re
from typing import Callable, NamedTuple, Sequence

import numpy as np

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
    import inspect

    from jaxml import models
    make = models.REGISTRY.get(config.get("model", {}).get("name", ""))
    return set(inspect.signature(make).parameters) if make else set()


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
class TrialOutcome(NamedTuple):
    value: float                 # the ranked metric (nan when the trial failed)
    metrics: dict = {}           # other final metrics of the ranked split
    status: str = "ok"           # "ok", "stopped early" or "failed: why"
    steps: int = 0
    workdir: str = ""


class Trial(NamedTuple):
    round: int
    index: int
    params: dict
    outcome: TrialOutcome


def rank(trials: Sequence[Trial], goal: str, *, tiebreak: str = "loss") -> list[Trial]:
    """Best first (``goal`` "max" or "min"); equal values are ordered by the smaller ``tiebreak`` metric
    when the trials report it (an accuracy of 1.0 reached by several trials); failed / non-finite
    trials last; then trial order."""
    if goal not in ("max", "min"):
        raise ValueError(f"goal must be 'max' or 'min', got {goal!r}")
    sign = -1.0 if goal == "max" else 1.0

    def key(t):
        v = t.outcome.value
        ok = v is not None and math.isfinite(v)
        tie = t.outcome.metrics.get(tiebreak, math.inf)
        return (0 if ok else 1, sign * v if ok else 0.0, tie if math.isfinite(tie) else math.inf, t.round, t.index)
    return sorted(trials, key=key)


def coarse_to_fine(space: Sequence[Dim], evaluate: Callable[[int, list[dict]], list[TrialOutcome]], *,
                   mode: str = "random", trials: int = 8, rounds: int = 1, top_k: int = 3, grid_points: int = 3,
                   goal: str = "max", seed: int = 0, on_round: Callable | None = None) -> tuple[list[Trial], list]:
    """Run ``rounds`` rounds; returns (all trials ranked, the space used by each round)."""
    if mode not in ("random", "grid"):
        raise SpaceError(f"--mode must be 'random' or 'grid', got {mode!r}")
    if rounds < 1 or top_k < 1 or (mode == "random" and trials < 1):
        raise SpaceError(f"need rounds >= 1, top_k >= 1 and trials >= 1; got rounds={rounds}, top_k={top_k}, "
                         f"trials={trials}")
    current, spaces, done = list(space), [], []
    for r in range(rounds):
        spaces.append(current)
        points = (sample_random(current, trials, np.random.default_rng([seed, r])) if mode == "random"
                  else sample_grid(current, grid_points))
        outcomes = evaluate(r, points)
        if len(outcomes) != len(points):
            raise RuntimeError(f"evaluate returned {len(outcomes)} outcomes for {len(points)} points")
        done += [Trial(r, i, p, o) for i, (p, o) in enumerate(zip(points, outcomes))]
        ranked = rank(done, goal)
        if on_round is not None:
            on_round(r, ranked)
        good = [t.params for t in ranked if math.isfinite(t.outcome.value)][:top_k]
        if good and r + 1 < rounds:
            current = narrow(space, current, good)
    return rank(done, goal), spaces


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table_rows(ranked: Sequence[Trial], metric_name: str) -> tuple[list[str], list[list]]:
    fields = list(dict.fromkeys(f for t in ranked for f in t.params))
    extra = sorted({k for t in ranked for k in t.outcome.metrics} - {metric_name})
    header = ["rank", "round", "trial", *fields, metric_name, *extra, "steps", "status", "workdir"]
    rows = [[i + 1, t.round, t.index, *[t.params.get(f, "") for f in fields], t.outcome.value,
             *[t.outcome.metrics.get(k, "") for k in extra], t.outcome.steps, t.outcome.status, t.outcome.workdir]
            for i, t in enumerate(ranked)]
    return header, rows


def write_tables(ranked: Sequence[Trial], metric_name: str, csv_path: str, md_path: str) -> None:
    """``results.csv`` (full precision) and ``results.md`` (a Markdown table, 4 significant digits)."""
    header, rows = table_rows(ranked, metric_name)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([[repr(v) if isinstance(v, float) else v for v in row] for row in rows])
    with open(md_path, "w") as f:
        f.write("| " + " | ".join(header) + " |\n")
        f.write("|" + "|".join("---:" if h not in ("status", "workdir") else "---" for h in header) + "|\n")
        for row in rows:
            f.write("| " + " | ".join(_fmt(v) for v in row) + " |\n")


# ----------------------------------------------------------------------------------------- training
def default_goal(metric: str) -> str:
    return "max" if metric in ("accuracy",) or metric.endswith("accuracy") else "min"


def _outcome(result: dict, split: str, metric: str, workdir: str) -> TrialOutcome:
    if result["status"] != "ok":
        return TrialOutcome(float("nan"), {}, result["status"], result["steps"], workdir)
    rec = result["final"].get(split)
    if rec is None or metric not in rec:
        have = sorted(result["final"]) if rec is None else sorted(k for k in rec if k not in ("step", "split"))
        raise SpaceError(f"--metric={metric} --split={split}: the trial reported no such value; "
                         f"{'splits' if rec is None else 'metrics'} available: {have}")
    metrics = {k: v for k, v in rec.items() if isinstance(v, float) and k not in ("step", metric)}
    status = "stopped early" if result["stopped_early"] else "ok"
    return TrialOutcome(float(rec[metric]), metrics, status, int(result["steps"]), workdir)


def _train_one(config, workdir: str) -> dict:
    """One trial through ``train_and_evaluate``; a diverged run is a failed trial, not a crash."""
    from jaxml.train.loop import train_and_evaluate
    from jaxml.train.metrics_log import read_records
    try:
        final = train_and_evaluate(config, workdir)
    except FloatingPointError as e:
        return {"final": {}, "status": f"failed: {e}".split(";")[0], "steps": 0, "stopped_early": False}
    records = read_records(workdir)
    steps = max((r["step"] for r in records), default=0)
    stopped = any(r.get("early_stopped") for r in records)
    return {"final": final, "status": "ok", "steps": steps, "stopped_early": stopped}


def run_sweep(config, workdir: str, space_text: str, *, mode: str = "random", trials: int = 8, rounds: int = 1,
              top_k: int = 3, grid_points: int = 3, metric: str = "accuracy", split: str = "validation",
              goal: str = "auto", patience: int = 3, population: str = "auto", seed: int = 0,
              trial_reports: bool = False, log: Callable[[str], None] = print) -> list[Trial]:
    """Search ``space_text`` over ``config``; trial i of round r trains in ``<workdir>/r<r>_t<i>``.

    Early stopping on (split, metric) with ``patience`` evals is switched on unless the config already
    sets ``train.early_stopping.metric`` (``patience=0``: off). ``population``: "auto" trains each
    round as one vmapped population when every swept field is in ``population.POPULATION_FIELDS``,
    "always" insists on it, "never" runs one ``train_and_evaluate`` per trial. Returns the trials
    ranked best first and writes ``results.csv``, ``results.md`` and ``sweep.json`` after every round.
    Re-run in the same workdir, trial-by-trial rounds resume each trial from its checkpoints (finished
    trials return at once); population rounds, which keep no checkpoints, train again.
    """
    import jax

    from jaxml import data
    from jaxml.train import config as config_lib, population as population_lib

    space = parse_space(space_text)
    check_fields(space, config)
    goal = default_goal(metric) if goal == "auto" else goal
    if goal not in ("max", "min"):
        raise SpaceError(f"--goal must be auto, max or min, got {goal!r}")
    if population not in ("auto", "always", "never"):
        raise SpaceError(f"--population must be auto, always or never, got {population!r}")
    unsupported = population_lib.unsupported_fields([d.field for d in space])
    if population == "always" and unsupported:
        raise SpaceError(f"--population=always: {unsupported} cannot vary inside one vmapped population (only "
                         f"{list(population_lib.POPULATION_FIELDS)} can); use --population=auto or never")
    use_population = population == "always" or (population == "auto" and not unsupported
                                                and jax.process_count() == 1)
    base = copy.deepcopy(config)
    base.train.progress_bar = False
    if not trial_reports:
        base.reports = ()
    es = base.train.early_stopping
    if patience > 0 and not es.metric:
        es.metric, es.split, es.mode, es.patience = metric, split, goal, int(patience)
    config_lib.validate(base)
    have = sorted(data.build(base).eval)
    if split not in have:
        raise SpaceError(f"--split={split}: the dataset {base.data.name!r} has eval splits {have}")
    if split == "test":
        log("note: ranking on the test split — the chosen trial's test score is then optimistic")
    os.makedirs(workdir, exist_ok=True)
    log(f"sweep: {len(space)} field(s), mode={mode}, rounds={rounds}, "
        f"{'one vmapped population per round' if use_population else 'one train_and_evaluate per trial'}"
        + (f" ({', '.join(unsupported)} cannot vary inside a vmapped population)" if unsupported else ""))

    def evaluate(r: int, points: list[dict]) -> list[TrialOutcome]:
        configs = []
        for p in points:
            c = apply_overrides(base, p)
            try:
                config_lib.validate(c)
            except config_lib.ConfigError as e:
                raise SpaceError(f"trial {p}: {e}") from None
            configs.append(c)
        dirs = [os.path.join(workdir, f"r{r}_t{i:03d}") for i in range(len(points))]
        together = use_population
        if together and population == "auto":
            try:  # e.g. a dropout rate of 0 removes a layer: shapes differ, so run this round trial by trial
                population_lib.check_population(configs)
            except config_lib.ConfigError as e:
                log(f"round {r}: trials run one by one ({e})")
                together = False
        if together:
            results = population_lib.train_population(configs, dirs)
        else:
            results = [_train_one(c, d) for c, d in zip(configs, dirs)]
        return [_outcome(res, split, metric, d) for res, d in zip(results, dirs)]

    def on_round(r: int, ranked: list[Trial]) -> None:
        if jax.process_index() == 0:
            write_tables(ranked, f"{split}_{metric}", os.path.join(workdir, "results.csv"),
                         os.path.join(workdir, "results.md"))
        best = ranked[0]
        log(f"round {r}: best so far {split} {metric} = {best.outcome.value:.4g} at "
            + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()))

    ranked, spaces_seen = coarse_to_fine(space, evaluate, mode=mode, trials=trials, rounds=rounds, top_k=top_k,
                                         grid_points=grid_points, goal=goal, seed=seed, on_round=on_round)
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "sweep.json"), "w") as f:
            json.dump({"metric": metric, "split": split, "goal": goal, "mode": mode, "population": use_population,
                       "spaces": [[str(d) for d in s] for s in spaces_seen],
                       "best": {"params": ranked[0].params, "value": ranked[0].outcome.value}}, f, indent=1)
    return ranked
