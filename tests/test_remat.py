"""Remat (``config.model.remat``): each block under ``jax.checkpoint`` gives the gradients, outputs and batch-norm
state of the plain model on the same params and batch — MLP and CNN (sequential blocks with batch norm and
dropout), ResNet and Transformer blocks — and a whole train step from a config; bad values are refused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import models
from jaxml.nn import remat as remat_lib
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import train_and_evaluate

CASES = {
    "mlp": ("mlp", dict(input_shape=(12,), widths=(16, 16, 8), batch_norm=True, dropout=0.25, num_outputs=3),
            (6, 12)),
    "cnn": ("cnn", dict(input_shape=(8, 8, 2), layers=("conv:4:3", "act", "bn", "dropout:0.2", "conv:6:3:2", "act",
                                                        "maxpool:2", "flatten", "dense:8", "act"), num_outputs=3),
            (4, 8, 8, 2)),
    "vit": ("vit", dict(input_shape=(8, 8, 2), patch_size=4, dim=8, depth=2, heads=2, mlp_dim=16, num_outputs=3,
                        dropout=0.1, stochastic_depth=0.2), (4, 8, 8, 2)),
}


def loss_and_grads(name, hyper, x_shape, remat):
    model = models.get(name, **hyper, remat=remat)
    params = jax.tree.map(lambda a: a + 0.05, model.init(jax.random.key(0)))    # the ViT's head starts at zero
    x = jax.random.normal(jax.random.key(1), x_shape)
    kwargs = {"example_ids": jnp.arange(x_shape[0])} if "example_ids" in model.extras else {}

    def loss(p):
        y, new_state = model.apply(p, x, state=model.init_state(), train=True, key=jax.random.key(2), **kwargs)
        return jnp.sum(jnp.sin(y)), new_state

    (value, new_state), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return value, new_state, grads


@pytest.mark.parametrize("case", sorted(CASES))
def test_remat_gradients_equal_plain(case):
    name, hyper, x_shape = CASES[case]
    plain, remat = (loss_and_grads(name, hyper, x_shape, r) for r in (False, True))
    assert jax.tree.structure(plain) == jax.tree.structure(remat)
    assert float(jnp.abs(plain[0])) > 0
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(plain[2]))


def test_remat_config_run_equals_plain(tmp_path):
    def run(remat):
        c = config_lib.base_config()
        c.model.name, c.model.widths, c.model.batch_norm, c.model.dropout = "mlp", (32, 16), True, 0.1
        c.model.remat = remat
        c.data.name, c.data.batch_size, c.data.eval_batch_size = "blobs", 32, 64
        c.train.update({"num_steps": 4, "log_every": 2, "progress_bar": False})
        return train_and_evaluate(c, str(tmp_path / f"remat{remat}"))

    plain, remat = run(False), run(True)
    for a, b in zip(jax.tree.leaves(plain.state.params), jax.tree.leaves(remat.state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_remat_must_be_a_bool():
    with pytest.raises(ValueError, match="remat must be True or False"):
        models.get("mlp", input_shape=(4,), widths=(4,), remat="yes")


def test_remat_checkpoints_each_sequential_block():
    """One ``jax.checkpoint`` per block: [flatten] and [dense, bn, act] x 3 -> 4; none without remat."""
    def count(remat):
        m = models.get("mlp", input_shape=(6,), widths=(4, 4, 4), batch_norm=True, remat=remat)
        jaxpr = jax.make_jaxpr(lambda p, x: m.apply(p, x, train=True)[0])(m.init(jax.random.key(0)), jnp.ones((2, 6)))
        return sum(str(e.primitive).startswith(("remat", "checkpoint")) for e in jaxpr.jaxpr.eqns)

    assert (count(False), count(True)) == (0, 4)


def test_chain_scans_identical_blocks_and_equals_the_loop():
    """Items 0-1 and 3-5 are runs of identical blocks (two scans), 2 differs in static and 6 in shape."""
    def block(h, d, scale):
        w, b = d
        return jnp.tanh(h @ w + b) * scale, jnp.sum(h)

    ks = jax.random.split(jax.random.key(0), 7)
    ws = [jax.random.normal(k, (5, 5)) * 0.5 for k in ks]
    items = [(1.0, (ws[0], 0.1)), (1.0, (ws[1], 0.2)), (2.0, (ws[2], 0.3)),
             (1.0, (ws[3], 0.4)), (1.0, (ws[4], 0.5)), (1.0, (ws[5], 0.6)), (1.0, (ws[6][:, :5], jnp.ones(5)))]
    assert [len(g) for g in remat_lib._groups(items)] == [2, 1, 3, 1]
    h0 = jax.random.normal(jax.random.key(1), (3, 5))

    def loss(h, remat):
        h, outs = remat_lib.chain(block, h, items, remat=remat)
        return jnp.sum(jnp.sin(h)) + sum(jnp.cos(o) for o in outs)

    plain, remat = (jax.jit(jax.value_and_grad(loss), static_argnums=1)(h0, r) for r in (False, True))
    np.testing.assert_allclose(plain[0], remat[0], rtol=1e-6)
    np.testing.assert_allclose(plain[1], remat[1], rtol=1e-6, atol=1e-7)
    jaxpr = str(jax.make_jaxpr(lambda h: loss(h, True))(h0))
    assert jaxpr.count("scan[") == 2 and float(jnp.abs(plain[1]).max()) > 0


def test_remat_resnet_stage_of_identical_blocks_equals_plain():
    """stages (3, 2): blocks s0b0-s0b2 and s1b1 share shapes; batch-norm state comes back per block. (The ResNet's
    case of test_remat_gradients_equal_plain.)"""
    hyper = dict(input_shape=(8, 8, 2), stages=(3, 2), widths=(4, 6), num_outputs=3)
    plain, remat = (loss_and_grads("resnet", hyper, (4, 8, 8, 2), r) for r in (False, True))
    assert jax.tree.structure(plain) == jax.tree.structure(remat)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(remat)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
