"""Inputs checked at the door of ``fit`` and the loop (issue #32, bad case 7 and item 4).

A label of -1 trained as the last class (the same params_sha256 as label 9), labels >= the number of outputs
gave NaN that the guard blamed on the learning rate; NaN in x, one-hot or float targets, string x and a seed
of 2**70 failed deep inside JAX. Each is now refused before anything is built, naming the split, the argument
and the first bad example.
"""
import numpy as np
import pytest

from jaxml.kmeans import kmeans
from jaxml.train import config as config_lib
from jaxml.train import fit

N, D, C = 64, 3, 4


def mlp_config(objective="softmax_xent", num_outputs=C):
    c = config_lib.base_config()
    c.objective = objective
    c.model.name, c.model.widths, c.model.num_outputs = "mlp", (8,), num_outputs
    c.data.batch_size, c.data.eval_batch_size = 16, 32
    c.optimizer.name, c.optimizer.lr = "sgd", 0.1
    c.train.update(dict(num_steps=2, log_every=1, progress_bar=False))
    return c


def arrays(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)).astype(np.float32), rng.integers(0, C, N).astype(np.int32)


@pytest.mark.parametrize("bad", [-1, C, C + 5])
def test_labels_outside_the_outputs_are_refused_naming_split_and_index(bad):
    x, y = arrays()
    y[17] = bad
    with pytest.raises(ValueError, match=rf"data\['train'\]\['y'\]\[17\] = {bad}: softmax_xent labels must be "
                                         rf"integers in \[0, {C}\) \(the model has {C} outputs"):
        fit(mlp_config(), data={"train": (x, y)})


def test_a_bad_label_in_an_eval_split_is_named_too():
    x, y = arrays()
    yt = y.copy()
    yt[3] = -1
    with pytest.raises(ValueError, match=r"data\['test'\]\['y'\]\[3\] = -1"):
        fit(mlp_config(), data={"train": (x, y), "test": (x, yt)})


def test_one_hot_and_float_targets_for_labels_are_refused():
    x, y = arrays()
    with pytest.raises(ValueError, match=r"one row of 4 per example \(one-hot\?\).*pass y.argmax\(-1\)"):
        fit(mlp_config(), data={"train": (x, np.eye(C, dtype=np.float32)[y])})
    with pytest.raises(ValueError, match=r"\['y'\] has dtype float32; softmax_xent takes integer class labels in "
                                         r"\[0, 4\): pass y.astype\(np.int32\)"):
        fit(mlp_config(), data={"train": (x, y.astype(np.float32))})


def test_regression_targets_of_another_shape_are_refused():
    x, _ = arrays()
    with pytest.raises(ValueError, match=r"data\['train'\]\['y'\] has shape \(64, 1\), but mse compares it with the "
                                         r"model's outputs of shape \(64, 2\)"):
        fit(mlp_config("mse", num_outputs=2), data={"train": (x, np.zeros((N, 1), np.float32))})


def test_nan_in_x_is_refused_naming_the_example():
    x, y = arrays()
    x[9, 2] = np.nan
    x[30, 0] = np.inf
    with pytest.raises(ValueError, match=r"data\['train'\]\['x'\]: example 9 holds NaN or inf \(2 examples do\)"):
        fit(mlp_config(), data={"train": (x, y)})


def test_string_x_is_refused():
    _, y = arrays()
    with pytest.raises(ValueError, match=r"data\['train'\]\['x'\] is not a numeric array \(dtype <U1, strings\)"):
        fit(mlp_config(), data={"train": (np.full((N, D), "a"), y)})


@pytest.mark.parametrize("seed", [2**70, -1])
def test_a_seed_out_of_range_names_config_seed(seed):
    x, y = arrays()
    c = mlp_config()
    c.seed = seed
    with pytest.raises(config_lib.ConfigError, match=r"config.seed must be a whole number in \[0, 2\*\*63\)"):
        fit(c, data={"train": (x, y)})


def test_kmeans_seed_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"kmeans: seed must be a whole number in \[0, 2\*\*63\)"):
        kmeans(np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32), 2, seed=2**70)


def test_predict_inputs_must_have_the_trained_shape():
    x, y = arrays()
    trained = fit(mlp_config(), data={"train": (x, y)})
    assert trained.predict(x[:5]).shape == (5, C)
    with pytest.raises(ValueError, match=r"predict: x has examples of shape \(5,\), which the trained model does not "
                                         r"take"):
        trained.predict(np.zeros((5, 5), np.float32))
    with pytest.raises(ValueError, match=r"predict: x must be numbers, got dtype <U1"):
        trained.predict(np.full((5, D), "a"))
