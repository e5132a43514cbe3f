"""Hyperparameter search: grid and random ("coarse to fine") rounds over a search space (jaxml/tune/space.py),
ranking, tables.

``coarse_to_fine(space, evaluate, ...)`` drives the rounds with any ``evaluate(round, points) ->
[TrialOutcome]``: round r + 1 samples (random) or grids (grid) the space narrowed around the top-k trials.
``run_sweep`` plugs in real training — one vmapped population per round where the swept fields allow it
(``jaxml/tune/population.py``), else one ``train_and_evaluate`` per trial — and writes the ranked
``results.csv`` / ``results.md``.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
from typing import Callable, NamedTuple, Sequence

import jax
import numpy as np

from jaxml import data
from jaxml.train import config as config_lib
from jaxml.train.loop import train_and_evaluate
from jaxml.tune import population as population_lib
from jaxml.tune.space import (
    Dim,
    SpaceError,
    apply_overrides,
    check_fields,
    narrow,
    parse_space,
    sample_grid,
    sample_random,
)


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


def _result(trained) -> dict:
    """A trial's result from its ``Trained`` run."""
    status = "ok" if trained.failure is None else f"failed: {trained.failure}"
    return {"final": trained.final, "status": status, "steps": trained.step, "stopped_early": trained.stopped_early}


def _train_one(config, workdir: str) -> dict:
    """One trial through ``train_and_evaluate``; a diverged run is a failed trial, not a crash."""
    try:
        return _result(train_and_evaluate(config, workdir))
    except FloatingPointError as e:
        return {"final": {}, "status": f"failed: {e}".split(";")[0], "steps": 0, "stopped_early": False}


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
            results = [_result(t) for t in population_lib.train_population(configs, dirs)]
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
