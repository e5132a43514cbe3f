"""The jit (GSPMD) driver on 4 fake CPU devices: fsdp=4, data=2 x fsdp=2 and data=4 train the 1-device run
(with dropout), params and Adam state are sharded (per-device bytes fall by the fsdp factor),
checkpoints cross between fsdp and 1 device bit-identically, bad meshes are config errors."""
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxml import data
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import gspmd, loop, train_and_evaluate
from tests import helpers
from tests.restore import final_params

MESHES = {"fsdp4": {"data": 1, "fsdp": 4}, "data2_fsdp2": {"data": 2, "fsdp": 2}, "data4": {"data": 4, "fsdp": 1}}


def blobs_config(backend="none", mesh=None):
    parallel = {"backend": backend} if mesh is None else {"backend": backend, "mesh": dict(mesh)}
    return helpers.blobs_config(model={"widths": (64, 32), "dropout": 0.2},
                                data={"batch_size": 64, "eval_batch_size": 64}, optimizer={"lr": 0.01},
                                parallel=parallel, num_steps=24, log_every=12)


def test_fsdp_spec_shards_the_largest_divisible_dimension():
    assert gspmd.fsdp_spec((784, 1024), 4) == P(None, "fsdp")
    assert gspmd.fsdp_spec((1026, 512), 4) == P(None, "fsdp")       # 1026 does not divide: the next largest
    assert gspmd.fsdp_spec((64,), 4) == P()                          # small: replicated
    assert gspmd.fsdp_spec((1031, 3), 4) == P()                      # nothing divides
    assert gspmd.fsdp_spec((784, 1024), 1) == P()
    assert gspmd.mesh_shape({"data": -1, "fsdp": 2}, 8) == {"data": 4, "fsdp": 2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    assert jax.device_count() == 4
    out = {}
    for name, mesh in [("one", None), *MESHES.items()]:
        c = blobs_config("none" if mesh is None else "jit", mesh)
        wd = str(tmp_path_factory.mktemp(name))
        out[name] = (c, wd, train_and_evaluate(c, wd).final, final_params(wd, c))
    return out


@pytest.mark.parametrize("mesh", list(MESHES))
def test_each_mesh_trains_the_one_device_run(runs, mesh):
    """24 Adam steps with dropout 0.2: params to 1e-5 relative (so the dropout masks are the same). (Adam with
    batch norm is no test of this: the bias before a batch norm has a zero gradient, Adam turns its rounding
    noise into +-lr steps.)"""
    params, _ = runs[mesh][3]
    ref_params, _ = runs["one"][3]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), params, ref_params)
    assert runs[mesh][2]["test"]["loss"] == pytest.approx(runs["one"][2]["test"]["loss"], rel=1e-5)


def per_device_bytes(tree):
    """Bytes of the leaves' shards on device 0."""
    return sum(a.addressable_shards[0].data.nbytes for a in jax.tree.leaves(tree))


def test_fsdp_shards_params_and_adam_state(runs):
    """The 64 x 32 kernel (2048 floats) and its two Adam moments are split over fsdp; per-device bytes of the
    sharded leaves fall by the fsdp factor."""
    c, wd, _, _ = runs["fsdp4"]
    _, _, state = loop.restore_trained(c, wd, data.build(c).input_shape)
    kernel = state.params["dense_1"]["w"]
    assert kernel.shape == (64, 32) and kernel.sharding.spec == P("fsdp")
    assert kernel.addressable_shards[0].data.shape == (16, 32)
    big = [a for a in jax.tree.leaves((state.params, state.opt_state)) if a.size >= 1024]
    assert len(big) == 3                                             # the kernel, Adam's mu and nu for it
    assert per_device_bytes(big) * 4 == sum(a.nbytes for a in big)


def test_checkpoints_cross_between_fsdp_and_one_device(runs):
    """The fsdp run's checkpoint restored on one device, and the 1-device run's under fsdp: same bits."""
    c_fsdp, wd_fsdp, _, _ = runs["fsdp4"]
    c_one, wd_one, _, _ = runs["one"]
    shape = data.build(c_one).input_shape
    _, d_f, s_f = loop.restore_trained(c_fsdp, wd_fsdp, shape)
    _, d_1, s_1 = loop.restore_trained(c_one, wd_fsdp, shape)        # fsdp checkpoint, 1-device driver
    jax.tree.map(np.testing.assert_array_equal, d_1.fetch(s_1), d_f.fetch(s_f))
    _, d_o, s_o = loop.restore_trained(c_one, wd_one, shape)
    _, d_x, s_x = loop.restore_trained(c_fsdp, wd_one, shape)        # 1-device checkpoint, fsdp driver
    jax.tree.map(np.testing.assert_array_equal, d_x.fetch(s_x), d_o.fetch(s_o))
    assert s_x.params["dense_1"]["w"].sharding.spec == P("fsdp")


@pytest.mark.parametrize("mesh,message", [({"data": 3}, "config.parallel.mesh"),
                                          ({"data": -1, "fsdp": -1}, "at most one -1"),
                                          ({"data": 2, "fsdp": 4}, "not the 4 there are")])
def test_bad_meshes_are_config_errors(tmp_path, mesh, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        train_and_evaluate(blobs_config("jit", mesh), str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_accumulation_under_fsdp_trains_the_one_device_run(runs, tmp_path):
    """train.accum_steps=4 on the fsdp=4 mesh: the 1-device, one-batch run's params."""
    c = blobs_config("jit", MESHES["fsdp4"])
    c.train.accum_steps = 4
    train_and_evaluate(c, str(tmp_path))
    params, _ = final_params(str(tmp_path), c)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), params, runs["one"][3][0])


def test_batch_norm_uses_global_statistics_on_the_mesh(tmp_path):
    """Batch norm with SGD + momentum on data=2 x fsdp=2: params and running statistics of the 1-device run."""
    out = []
    for backend, mesh in (("none", None), ("jit", MESHES["data2_fsdp2"])):
        c = blobs_config(backend, mesh)
        c.model.batch_norm, c.optimizer.name = True, "momentum"
        train_and_evaluate(c, str(tmp_path / backend))
        out.append(final_params(str(tmp_path / backend), c))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), out[1], out[0])
