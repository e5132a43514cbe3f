"""The Python API: ``fit`` on arrays is ``train_and_evaluate`` on the same data through a registered builder (same
parameters bit for bit, same records), in memory it writes nothing, its predictions are ``model.apply``'s, with a
workdir it resumes bit-identically, a hand-written loop over the public step functions reaches the same
parameters, and bad arrays fail naming the problem."""
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxml
from jaxml import data
from jaxml.tasks.toy import gaussian_blobs
from jaxml.train import config as config_lib
from jaxml.train import fit, reports, train_and_evaluate
from jaxml.train.fit import auto_steps
from jaxml.train.metrics_log import read_records
from jaxml.train.profiling import TIMING_FIELDS
from jaxml.train.state import params_sha256

TRAIN = gaussian_blobs(0, 320, num_classes=4, features=8)
TEST = {k: v[-100:] for k, v in gaussian_blobs(0, 420, num_classes=4, features=8).items()}
ARRAYS = {"train": (TRAIN["x"], TRAIN["y"]), "test": (TEST["x"], TEST["y"])}

data.register("test_fit_blobs", lambda c: data.from_arrays(ARRAYS, batch_size=c.data.batch_size, seed=c.seed))


def blobs_config(**train):
    c = jaxml.train.base_config()
    c.model.name, c.model.widths, c.model.num_outputs, c.model.batch_norm = "mlp", (16,), 4, True
    c.data.batch_size, c.data.eval_batch_size = 32, 64
    c.optimizer.lr = 0.01
    c.seed = 3
    c.train.update({"num_epochs": 3, "log_every": 5, "progress_bar": False, **train})
    return c


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One in-memory run of 30 steps with batch norm (a model state), fitted in an empty working directory."""
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        c = blobs_config(num_steps=30)
        c.reports = ("curves",)                    # a report writes files: skipped without a workdir
        run = fit(c, data=ARRAYS)
    assert list(cwd.iterdir()) == []               # nothing written
    return run


def test_fit_on_arrays_is_train_and_evaluate_on_a_registered_builder(trained, tmp_path):
    c = blobs_config(num_steps=30)
    c.data.name = "test_fit_blobs"
    final = train_and_evaluate(c, str(tmp_path)).final
    assert final["test"]["params_sha256"] == trained.final["test"]["params_sha256"] == trained.params_sha256()
    assert final["test"]["accuracy"] == trained.final["test"]["accuracy"] > 0.5      # 4 classes: chance 0.25
    assert without_timing(trained.history) == without_timing(read_records(str(tmp_path)))
    assert trained.step == 30 and trained.workdir is None and trained.config.data.name == "arrays"
    assert trained.config.data.arrays_sha256 == data.arrays_sha256(ARRAYS)
    steps, losses = trained.curves("train", "loss")
    assert steps == [5, 10, 15, 20, 25, 30] and losses[-1] < losses[0]
    fig = trained.plot()                           # the curves report's figure, from memory
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert {line.get_label() for line in fig.axes[0].get_lines()} == {"train", "test"}


def test_train_and_evaluate_without_a_workdir_writes_no_file(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = blobs_config(num_steps=30)
    c.data.name, c.reports = "test_fit_blobs", ("curves",)
    assert train_and_evaluate(c).final == trained.final
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_predict_and_evaluate_are_model_apply_in_eval_mode(trained):
    x = TEST["x"][:37]
    expect, _ = trained.model.apply(trained.params, jnp.asarray(x), state=trained.model_state, train=False)
    np.testing.assert_allclose(trained.predict(x, batch_size=16), np.asarray(expect), rtol=1e-5, atol=1e-6)
    assert trained.predict(x).shape == (37, 4)
    metrics = trained.evaluate((TEST["x"], TEST["y"]), batch_size=30)
    assert metrics["accuracy"] == pytest.approx(trained.final["test"]["accuracy"], abs=1e-6)
    logits = trained.predict(TEST["x"])
    assert metrics["accuracy"] == pytest.approx(float(np.mean(logits.argmax(-1) == TEST["y"])), abs=1e-6)
    assert metrics["loss"] == pytest.approx(float(optax.softmax_cross_entropy_with_integer_labels(
        logits, TEST["y"]).mean()), rel=1e-5)


@pytest.mark.slow
def test_fit_in_a_workdir_resumes_bit_identically(trained, tmp_path):
    whole = trained
    first = fit(blobs_config(num_steps=20, checkpoint_every=10), data=ARRAYS, workdir=str(tmp_path))
    assert first.step == 20 and (tmp_path / "checkpoints").is_dir()
    resumed = fit(blobs_config(num_steps=30, checkpoint_every=10), data=ARRAYS, workdir=str(tmp_path),
                  allow_config_change=("train.num_steps",))
    assert resumed.params_sha256() == whole.params_sha256()
    train_records = [r for r in without_timing(resumed.history) if r["split"] == "train"]
    assert train_records == [r for r in without_timing(whole.history) if r["split"] == "train"]
    assert resumed.history[-1] == whole.history[-1]
    again = fit(blobs_config(num_steps=30, checkpoint_every=10), data=ARRAYS, workdir=str(tmp_path))
    assert again.params_sha256() == whole.params_sha256() and again.final == resumed.final   # finished: restored
    other = {"train": (TRAIN["x"] + 1.0, TRAIN["y"]), "test": ARRAYS["test"]}
    with pytest.raises(config_lib.ConfigError, match="data.arrays_sha256"):
        fit(blobs_config(num_steps=30, checkpoint_every=10), data=other, workdir=str(tmp_path))


def test_a_hand_written_loop_over_the_public_steps_matches_fit(trained):
    config = blobs_config(num_steps=30)
    model = jaxml.models.get("mlp", input_shape=(8,), widths=(16,), num_outputs=4, batch_norm=True)
    optimizer = jaxml.train.make_optimizer(config.optimizer, 30)
    state = jaxml.train.init_state(model, optimizer, seed=config.seed)
    step = jaxml.train.train_step_fn(model, "softmax_xent", optimizer, seed=config.seed)
    source = data.from_arrays(ARRAYS, batch_size=32, seed=config.seed).train
    for s in range(30):
        state, metrics = step(state, source.batch(s))
    assert set(metrics) == {"loss", "accuracy", "objective"} and int(state.step) == 30
    assert params_sha256(jax.device_get(state.params)) == trained.params_sha256()
    assert params_sha256(jax.device_get(state.model_state)) == params_sha256(trained.model_state)
    evaluate = jaxml.train.eval_fn(model, jaxml.train.objective_fn("softmax_xent"), batch_size=64)
    metrics = evaluate(state.params, state.model_state, ARRAYS["test"])
    assert metrics == pytest.approx({k: trained.final["test"][k] for k in ("loss", "accuracy")}, abs=1e-6)
    predict = jaxml.train.predict_fn(model, batch_size=64)
    np.testing.assert_array_equal(predict(state.params, state.model_state, TEST["x"]), trained.predict(TEST["x"]))


def test_bad_arrays_fail_naming_the_problem(tmp_path):
    c = blobs_config(num_steps=2)
    with pytest.raises(ValueError, match=r"data\['train'\]: x and y must have one entry per example.*x: 320.*y: 319"):
        fit(c, data={"train": (TRAIN["x"], TRAIN["y"][:-1])})
    with pytest.raises(ValueError, match=r"no 'train' split.*\['test'\]"):
        fit(c, data={"test": ARRAYS["test"]})
    with pytest.raises(ValueError, match=r"data\['test'\]: examples of shape \(7,\) but train's are \(8,\)"):
        fit(c, data={"train": ARRAYS["train"], "test": (TEST["x"][:, :7], TEST["y"])})
    with pytest.raises(ValueError, match=r"data\['train'\] must be a pair \(x, y\)"):
        fit(c, data={"train": TRAIN["x"]})
    with pytest.raises(ValueError, match=r"batch_size 32 must be a whole number in \[1, 10\]"):
        fit(c, data={"train": (TRAIN["x"][:10], TRAIN["y"][:10])})
    c.data.name = "arrays"
    with pytest.raises(ValueError, match="pass the arrays to fit"):
        train_and_evaluate(c)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_an_in_memory_run_that_diverges_says_nothing_was_saved():
    c = blobs_config(num_steps=10)
    c.optimizer.name, c.optimizer.lr = "sgd", 1e30
    with pytest.raises(FloatingPointError, match="non-finite loss.*no workdir: nothing was saved"):
        fit(c, data=ARRAYS)


def test_the_report_figures_build_without_pyplot(tmp_path):
    cm = np.array([[5, 1, 0], [0, 3, 2], [1, 0, 4]])
    fig = reports.confusion_figure(cm, ["a", "b", "c"], "t")
    assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(str(v) for v in cm.ravel())
    with pytest.raises(ValueError, match=r"shape \(3, 3\) for 2 class names"):
        reports.confusion_figure(cm, ["a", "b"])
    reports.save_confusion_matrix(cm, ["a", "b", "c"], str(tmp_path / "cm.png"), "t")
    assert (tmp_path / "cm.png").stat().st_size > 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "cm.csv", delimiter=",", dtype=int), cm)
    with pytest.raises(ValueError, match="no metric to plot"):
        reports.curves_figure([{"step": 1, "split": "train", "other": 1.0}])


def sgd_config(backend):
    c = blobs_config(num_steps=20)
    c.optimizer.name, c.optimizer.lr, c.parallel.backend = "sgd", 0.05, backend   # Adam would amplify rounding
    return c


@pytest.fixture(scope="module")
def sgd_one_device():
    return fit(sgd_config("none"), data=ARRAYS)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["shard_map", "pmap"])
def test_fit_on_four_devices_matches_one(sgd_one_device, backend):
    one, four = sgd_one_device, fit(sgd_config(backend), data=ARRAYS)
    assert jax.device_count() == 4 and jax.tree.map(np.shape, four.state) == jax.tree.map(np.shape, one.state)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), four.params, one.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), four.model_state,
                 one.model_state)                                                    # batch-norm statistics
    np.testing.assert_allclose(four.predict(TEST["x"]), one.predict(TEST["x"]), rtol=1e-4, atol=1e-4)


def readme_python_api_block() -> str:
    """The first ```python block under README.md's "## Python API" heading."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


def test_the_readme_python_api_example_runs_and_scores_as_stated(tmp_path, monkeypatch):
    """The README block as written: load_digits, base_config's budget (fit's automatic 1,500 steps) and test
    accuracy >= 0.95; eval_every alone gives the test split a curve; nothing is written."""
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(readme_python_api_block(), "README.md", "exec"), ns)
    run = ns["run"]
    assert ns["accuracy"] >= 0.95 and run.step == run.config.train.num_steps == auto_steps(10) == 1500
    assert run.curves("test", "accuracy")[0] == list(range(100, 1501, 100))
    assert ns["out"].argmax(-1).tolist() == run.predict(ns["xt"]).argmax(-1).tolist()
    assert list(tmp_path.iterdir()) == []


def test_the_auto_budget_scales_with_the_data_and_an_explicit_one_is_kept():
    assert [auto_steps(n) for n in (1, 10, 300, 469)] == [1500, 1500, 1500, 2345]   # max(1500, 5 epochs)
    run = fit(blobs_config(num_steps=0, num_epochs=2), data=ARRAYS)
    assert run.step == 20 and run.config.train.num_steps == 0                 # 320 examples / 32: 10 a epoch


def test_eval_every_alone_evaluates_the_given_splits_with_fixed_colours(trained):
    """fit with eval_every and no eval_splits evaluates every split it was given (test too); every plot draws
    train in C0 and test in C1, whatever order the records come in."""
    run = fit(blobs_config(num_steps=30, eval_every=10), data=ARRAYS)
    assert run.config.train.eval_splits == ("test",) and run.curves("test", "loss")[0] == [10, 20, 30]
    assert trained.curves("test", "loss")[0] == [30]                         # no eval_every: the final record only
    assert run.params_sha256() == trained.params_sha256()                     # evaluating changes no parameter
    for records in (run.history, run.history[::-1]):
        for ax in reports.curves_figure(records).axes:
            assert {line.get_label(): line.get_color() for line in ax.get_lines()} == {"train": "C0", "test": "C1"}
    assert reports.split_colours(["zeta", "train", "alpha"]) == {"train": "C0", "alpha": "C4", "zeta": "C5"}
