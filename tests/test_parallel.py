"""Data parallelism on 4 fake CPU devices: N devices == 1 device, pmap == shard_map, batch-norm
statistics averaged across devices, divisibility errors."""
import jax
import numpy as np
import pytest

from jaxml import parallel
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate
from tests.restore import final_params


def mlp_config(backend, *, batch_norm=False, optimizer="sgd"):
    c = config_lib.base_config()
    c.model.name = "mlp"
    c.model.widths = (32, 16)
    c.model.batch_norm = batch_norm
    c.data.name = "blobs"
    c.data.batch_size = 64
    c.data.eval_batch_size = 64
    c.optimizer.name = optimizer
    c.optimizer.lr = 0.05
    c.train.num_steps = 20
    c.train.log_every = 10
    c.train.progress_bar = False
    c.parallel.backend = backend
    return c


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    assert jax.device_count() == 4
    out = {}
    for backend in ("none", "shard_map", "pmap"):
        for bn in (False, True):
            c = mlp_config(backend, batch_norm=bn)
            wd = str(tmp_path_factory.mktemp(f"{backend}_{bn}"))
            final = train_and_evaluate(c, wd).final
            out[backend, bn] = (final, *final_params(wd, c))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("backend", ["shard_map", "pmap"])
def test_four_devices_equal_one_device(runs, backend, bn):
    _, p1, s1 = runs["none", bn]
    fin, p4, s4 = runs[backend, bn]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), p4, p1)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5), s4, s1)  # BN running stats
    assert fin["test"]["accuracy"] == pytest.approx(runs["none", bn][0]["test"]["accuracy"], abs=1 / 256)


@pytest.mark.slow
def test_pmap_equals_shard_map(runs):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                 runs["pmap", True][1], runs["shard_map", True][1])


def test_mesh_spans_all_devices():
    mesh = parallel.data_mesh()
    assert mesh.shape == {"data": 4}


def test_batch_not_divisible_by_devices_is_a_config_error(tmp_path):
    c = mlp_config("shard_map")
    c.data.batch_size = 30
    with pytest.raises(config_lib.ConfigError, match="not divisible by the 4 devices"):
        train_and_evaluate(c, str(tmp_path))
