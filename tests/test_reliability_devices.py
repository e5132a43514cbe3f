"""What a resume under another driver or device count gives (issue #32, item 6).

Measured: resuming under any driver on the same number of devices (shard_map <-> pmap on 4) is bit-identical to
the uninterrupted run; resuming a 1-device run on 4 devices sums the remaining steps' gradients in another order,
so it matches neither uninterrupted layout bit for bit, but both to float32 rounding — as the two uninterrupted
layouts match each other. The resume says so in one line.
"""
import jax
import numpy as np
import pytest

from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import fit


def blobs(backend, steps):
    c = config_lib.base_config()
    c.model.name, c.model.widths = "mlp", (8,)
    c.data.name, c.data.batch_size, c.data.eval_batch_size = "blobs", 32, 128
    c.data.train_size, c.data.test_size = 256, 128
    c.optimizer.name, c.optimizer.lr = "sgd", 0.1
    c.train.update(dict(num_steps=steps, log_every=5, checkpoint_every=5, progress_bar=False))
    c.parallel.backend = backend
    return c


def resumed(tmp_path, first, then):
    fit(blobs(first, 5), workdir=str(tmp_path))
    return fit(blobs(then, 10), workdir=str(tmp_path), allow_config_change=("parallel.backend", "train.num_steps"))


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
               for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)))


@pytest.fixture(scope="module")
def uninterrupted():
    assert jax.device_count() == 4                                     # tests/conftest.py
    return {backend: fit(blobs(backend, 10)) for backend in ("none", "shard_map")}


def test_same_device_count_another_driver_is_bit_identical(tmp_path, uninterrupted, capsys):
    run = resumed(tmp_path, "shard_map", "pmap")
    assert run.params_sha256() == uninterrupted["shard_map"].params_sha256()
    assert "saved on" not in capsys.readouterr().err


def test_another_device_count_equals_both_layouts_to_float32_rounding_and_says_so(tmp_path, uninterrupted, capsys):
    run = resumed(tmp_path, "none", "shard_map")
    assert "resuming step 5, saved on 1 device(s), on 4" in capsys.readouterr().err
    between_layouts = max_diff(uninterrupted["none"], uninterrupted["shard_map"])
    assert between_layouts < 1e-6                                      # float32 rounding of |params| ~ 1
    for reference in uninterrupted.values():
        assert max_diff(run, reference) <= 4 * max(between_layouts, 1.2e-7)
