"""Hyperparameter search: space strings (and their errors), sampling, coarse-to-fine narrowing by hand,
ranking on a toy objective with a known optimum, the CSV/Markdown tables, and a real sweep on blobs
where a tiny lr must lose — trained once as a vmapped population and once trial by trial through
train_and_evaluate, with the same numbers."""
import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.tune import search
from jaxml.tune import space as space_lib
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse_space_reads_every_distribution():
    space = space_lib.parse_space("optimizer.lr=loguniform(1e-4, 1e-1); model.dropout=uniform(0,0.5);\n"
                               "seed=int(0, 3); optimizer.name=choice(adam, 'sgd', 7, true)")
    assert [(d.field, d.kind, d.args) for d in space] == [
        ("optimizer.lr", "loguniform", (1e-4, 0.1)), ("model.dropout", "uniform", (0.0, 0.5)),
        ("seed", "int", (0, 3)), ("optimizer.name", "choice", ("adam", "sgd", 7, True))]


@pytest.mark.parametrize("text,match", [
    ("", "empty search space"),
    ("optimizer.lr loguniform(1e-4,1)", r"'optimizer.lr loguniform\(1e-4,1\)': expected FIELD=DIST\(ARGS\)"),
    ("optimizer.lr=lognormal(1e-4,1)", "unknown distribution 'lognormal'"),
    ("optimizer.lr=loguniform(0,1)", "loguniform needs 0 < low"),
    ("optimizer.lr=uniform(1,0.5)", "need low < high, got low=1, high=0.5"),
    ("optimizer.lr=uniform(1)", "uniform takes two numbers"),
    ("optimizer.lr=uniform(a,b)", "uniform takes two numbers"),
    ("seed=int(0,2.5)", "int takes integer bounds"),
    ("seed=choice()", "choice needs one or more"),
    ("seed=choice(1,1)", "choice values repeat"),
    ("seed=choice(1); seed=choice(2)", "field 'seed' appears twice"),
])
def test_bad_space_strings_give_clear_errors(text, match):
    with pytest.raises(space_lib.SpaceError, match=match):
        space_lib.parse_space(text)


def test_fields_must_exist_and_values_are_coerced():
    c = config_lib.base_config()
    with pytest.raises(space_lib.SpaceError, match=r"'optimizer.learning_rate': config.optimizer has no field "
                                                r"'learning_rate'; it has \[.*'lr'"):
        space_lib.check_fields(space_lib.parse_space("optimizer.learning_rate=uniform(0,1)"), c)
    with pytest.raises(space_lib.SpaceError, match="'model.drop': config.model has no field 'drop'"):
        space_lib.check_fields(space_lib.parse_space("model.drop=uniform(0,0.5)"), c)
    c.model.widths = (4,)
    c.lock()                                    # as launch scripts hold it
    space_lib.check_fields(space_lib.parse_space("model.dropout=uniform(0,0.5)"), c)   # an mlp.make keyword
    assert space_lib.apply_overrides(c, {"model.dropout": 0.25}).model.dropout == 0.25
    with pytest.raises(space_lib.SpaceError, match="'optimizer' is not a scalar"):
        space_lib.check_fields(space_lib.parse_space("optimizer=choice(1)"), c)
    new = space_lib.apply_overrides(c, {"optimizer.lr": 1, "seed": 3.0, "optimizer.name": "sgd"})
    assert (new.optimizer.lr, type(new.optimizer.lr), new.seed, type(new.seed)) == (1.0, float, 3, int)
    assert c.optimizer.lr == 1e-3 and c.optimizer.name == "adam"          # the original is untouched
    with pytest.raises(space_lib.SpaceError, match="'seed' is an integer; got 0.5"):
        space_lib.apply_overrides(c, {"seed": 0.5})


def test_random_and_grid_sampling():
    space = space_lib.parse_space("a=loguniform(1e-4,1); b=uniform(-1,1); c=int(2,4); d=choice(x,y)")
    pts = space_lib.sample_random(space, 4000, np.random.default_rng(0))
    assert pts[:3] == space_lib.sample_random(space, 3, np.random.default_rng(0))     # reproducible
    a = np.array([p["a"] for p in pts])
    assert a.min() >= 1e-4 and a.max() <= 1
    assert abs(np.mean(a < 1e-2) - 0.5) < 0.03           # log-uniform: half below the geometric mean
    assert abs(np.mean(a < 1e-3) - 0.25) < 0.03
    assert abs(np.mean([p["b"] for p in pts])) < 0.05
    assert {p["c"] for p in pts} == {2, 3, 4} and {p["d"] for p in pts} == {"x", "y"}
    grid = space_lib.sample_grid(space, 3)
    assert len(grid) == 3 * 3 * 3 * 2
    assert sorted({p["a"] for p in grid}) == pytest.approx([1e-4, 1e-2, 1.0])
    assert sorted({p["b"] for p in grid}) == [-1.0, 0.0, 1.0]


def test_narrow_by_hand():
    space = space_lib.parse_space("u=uniform(0,10); l=loguniform(1e-4,1); c=choice(a,b,c); i=int(0,100)")
    top = [{"u": 4.0, "l": 1e-2, "c": "b", "i": 50}, {"u": 5.0, "l": 1e-2, "c": "c", "i": 54}]
    u, lg, c, i = space_lib.narrow(space, space, top)
    assert u.args == pytest.approx((4 - 1.25, 5 + 1.25))            # margin 0.25 * 1 + 0.1 * 10
    m = 0.1 * math.log(1e4)                                          # log space; the top-k span is 0
    assert lg.args == pytest.approx((1e-2 * math.exp(-m), 1e-2 * math.exp(m)))
    assert c.args == ("b", "c")
    assert i.args == (39, 65)                                        # 50 - 11, 54 + 11 (margin 1 + 10)
    edge = space_lib.narrow(space, space, [{"u": 9.9, "l": 0.9, "c": "a", "i": 100}])
    assert edge[0].args == pytest.approx((8.9, 10.0)) and edge[1].args[1] == 1.0   # clipped to the original


def test_coarse_to_fine_ranks_a_toy_objective():
    """f(lr, x) = -(log10 lr + 2)^2 - (x - 0.3)^2, best at lr = 1e-2, x = 0.3; x > 0.9 'diverges' (nan)."""
    calls = []

    def evaluate(r, points):
        calls.append(len(points))
        out = []
        for p in points:
            v = -(math.log10(p["lr"]) + 2) ** 2 - (p["x"] - 0.3) ** 2
            out.append(search.TrialOutcome(float("nan"), {}, "failed: diverged") if p["x"] > 0.9
                       else search.TrialOutcome(v, {"loss": -v}))
        return out

    space = space_lib.parse_space("lr=loguniform(1e-5,1); x=uniform(0,1)")
    ranked, spaces = search.coarse_to_fine(space, evaluate, trials=12, rounds=3, top_k=3, goal="max", seed=0)
    assert calls == [12, 12, 12] and len(ranked) == 36
    values = [t.outcome.value for t in ranked]
    finite = [v for v in values if math.isfinite(v)]
    assert finite == sorted(finite, reverse=True)                     # best first
    assert all(not math.isfinite(v) for v in values[len(finite):])     # failures last
    assert len(finite) < 36
    best = ranked[0].params
    assert abs(math.log10(best["lr"]) + 2) < 0.25 and abs(best["x"] - 0.3) < 0.1
    for r in (1, 2):                                                   # each round narrows around the optimum
        lr_dim, x_dim = spaces[r]
        assert lr_dim.args[0] < 1e-2 < lr_dim.args[1] and x_dim.args[0] < 0.3 < x_dim.args[1]
        assert (math.log(lr_dim.args[1] / lr_dim.args[0])
                < math.log(spaces[r - 1][0].args[1] / spaces[r - 1][0].args[0]))
    best_by_round = [max(t.outcome.value for t in ranked if t.round == r and math.isfinite(t.outcome.value))
                     for r in range(3)]
    assert best_by_round[2] > best_by_round[0]
    mins = search.rank([search.Trial(0, i, {}, search.TrialOutcome(v, {"loss": t})) for i, (v, t)
                        in enumerate([(0.5, 0.2), (0.1, 0.9), (0.5, 0.1), (float("nan"), 0.0)])], "min")
    assert [t.index for t in mins] == [1, 2, 0, 3]                     # min goal; ties broken by the lower loss


def test_tables_are_ranked_and_complete(tmp_path):
    trials = [search.Trial(0, 0, {"optimizer.lr": 0.1}, search.TrialOutcome(0.9, {"loss": 0.3}, "ok", 10, "w0")),
              search.Trial(0, 1, {"optimizer.lr": 0.01},
                           search.TrialOutcome(0.95, {"loss": 0.2}, "stopped early", 6, "w1")),
              search.Trial(1, 0, {"optimizer.lr": 3.0}, search.TrialOutcome(float("nan"), {}, "failed: nan", 2, "w2"))]
    search.write_tables(search.rank(trials, "max"), "validation_accuracy", tmp_path / "r.csv", tmp_path / "r.md")
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["optimizer.lr"] for r in rows] == ["0.01", "0.1", "3.0"]
    assert [r["rank"] for r in rows] == ["1", "2", "3"] and float(rows[0]["validation_accuracy"]) == 0.95
    assert rows[0]["status"] == "stopped early" and rows[2]["status"] == "failed: nan"
    md = (tmp_path / "r.md").read_text().splitlines()
    assert md[0] == "| rank | round | trial | optimizer.lr | validation_accuracy | loss | steps | status | workdir |"
    assert md[2].startswith("| 1 | 0 | 1 | 0.01 | 0.95 | 0.2 | 6 | stopped early |")


def _blobs_config():
    return helpers.blobs_config(data={"eval_batch_size": 128, "train_size": 512}, optimizer={"name": "sgd"},
                                num_epochs=2, eval_every=4, log_every=8, eval_splits=("test",), checkpoint_every=0)


@pytest.mark.slow
def test_sweep_on_blobs_population_equals_trial_by_trial(tmp_path):
    """lr 1e-5 (seed 1) vs lr 0.3 (seed 0): the tiny lr must rank last; early stopping on test accuracy
    (patience 2). The vmapped population and two train_and_evaluate runs give the same table."""
    space = "optimizer.lr=choice(0.00001,0.3); seed=choice(0,1)"
    kw = dict(mode="random", trials=2, seed=6, metric="accuracy", split="test", patience=2, log=lambda s: None)
    pop = search.run_sweep(_blobs_config(), str(tmp_path / "pop"), space, population="always", **kw)
    seq = search.run_sweep(_blobs_config(), str(tmp_path / "seq"), space, population="never", **kw)
    for ranked in (pop, seq):
        assert [t.params for t in ranked] == [{"optimizer.lr": 0.3, "seed": 0}, {"optimizer.lr": 1e-5, "seed": 1}]
        assert ranked[0].outcome.value > 0.95 and ranked[1].outcome.value < 0.8
    for p, s in zip(pop, seq):
        assert p.outcome.value == pytest.approx(s.outcome.value, abs=1e-6)
        assert p.outcome.metrics["loss"] == pytest.approx(s.outcome.metrics["loss"], rel=1e-5)
        assert (p.outcome.steps, p.outcome.status) == (s.outcome.steps, s.outcome.status)
    assert pop[0].outcome.status == "stopped early" and pop[0].outcome.steps < 32
    for d in ("pop", "seq"):
        with open(tmp_path / d / "results.csv") as f:
            rows = list(csv.DictReader(f))
        assert [float(r["optimizer.lr"]) for r in rows] == [0.3, 1e-5]
        assert (tmp_path / d / "results.md").exists()


@pytest.mark.slow
def test_sweep_over_dropout_rates_is_one_population_unless_a_rate_removes_the_layer(tmp_path):
    """model.dropout of a widths MLP: rates 0.1 / 0.3 train as one population with the same numbers as
    trial by trial; a grid holding 0.0 (no dropout layer: other shapes) falls back to trial by trial."""
    c = _blobs_config()
    c.model.dropout = 0.1
    kw = dict(mode="grid", grid_points=2, metric="accuracy", split="test", patience=0)
    logs = []
    pop = search.run_sweep(c, str(tmp_path / "pop"), "model.dropout=choice(0.1,0.3)", population="auto",
                           log=logs.append, **kw)
    seq = search.run_sweep(c, str(tmp_path / "seq"), "model.dropout=choice(0.1,0.3)", population="never",
                           log=lambda s: None, **kw)
    assert any("one vmapped population per round" in m for m in logs) and not any("one by one" in m for m in logs)

    def by_rate(ranked):
        return {t.params["model.dropout"]: t.outcome for t in ranked}

    for rate, o in by_rate(pop).items():
        assert o.metrics["loss"] == pytest.approx(by_rate(seq)[rate].metrics["loss"], rel=1e-5)
    logs.clear()
    mixed = search.run_sweep(c, str(tmp_path / "mixed"), "model.dropout=choice(0.0,0.3)", population="auto",
                             log=logs.append, **kw)
    assert any("trials run one by one" in m and "dropout" in m for m in logs), logs
    assert {t.params["model.dropout"] for t in mixed} == {0.0, 0.3} and all(t.outcome.status != "failed" for t in mixed)


def test_sweep_refuses_population_for_shape_fields_and_bad_split(tmp_path):
    c = _blobs_config()
    with pytest.raises(space_lib.SpaceError, match=r"--population=always: \['data.batch_size'\] cannot vary"):
        search.run_sweep(c, str(tmp_path), "data.batch_size=choice(16,32)", population="always")
    with pytest.raises(space_lib.SpaceError,
                       match=r"--split=validation: the dataset 'blobs' has eval splits \['test'\]"):
        search.run_sweep(c, str(tmp_path), "optimizer.lr=choice(0.1)", log=lambda s: None)


@pytest.mark.slow
def test_launch_sweep_bad_space_exits_nonzero_naming_the_problem(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "sweep.py"),
                        f"--config={os.path.join(ROOT, 'configs', 'blobs_mlp.py')}", f"--workdir={tmp_path}",
                        "--space=optimizer.lr=loguniform(0,1)"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "loguniform needs 0 < low" in r.stderr.strip().splitlines()[-1]
