"""MLP / CNN / registry: shapes and init sweeps, batch-norm state, dropout keys, spec errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import models
from jaxml.models import cnn, mlp, sequential
from jaxml.nn import activations


@pytest.mark.slow
@pytest.mark.parametrize("init,act", [(i, "relu") for i in ("glorot_uniform", "glorot_normal", "lecun_uniform",
                                                             "standard_normal", "zeros", "orthogonal")]
                         + [("glorot_uniform", a) for a in ("sigmoid", "tanh", "linear")])
@pytest.mark.slow
def test_mlp_init_and_activation_sweep(init, act):
    m = mlp.make(input_shape=(28, 28, 1), widths=(16, 8), num_outputs=10, activation=act, initializer=init)
    p = m.init(jax.random.key(0))
    assert {k: v["w"].shape for k, v in p.items()} == {"dense_0": (784, 16), "dense_1": (16, 8), "head_out": (8, 10)}
    x = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1))
    y, state = m.apply(p, x)
    # reference forward pass written out by hand
    h = x.reshape(5, -1)
    f = activations.get(act)
    h = f(h @ p["dense_0"]["w"] + p["dense_0"]["b"])
    h = f(h @ p["dense_1"]["w"] + p["dense_1"]["b"])
    np.testing.assert_allclose(y, h @ p["head_out"]["w"] + p["head_out"]["b"], atol=1e-5)
    assert state == {}


def test_mlp_batch_norm_state_flows_and_dropout_needs_key_only_in_training():
    m = mlp.make(input_shape=(4,), widths=(8,), batch_norm=True, dropout=0.5)
    p, s = m.init(jax.random.key(0)), m.init_state()
    x = jax.random.normal(jax.random.key(1), (32, 4)) + 3.0
    y1, s1 = m.apply(p, x, state=s, train=True, key=jax.random.key(2))
    y2, _ = m.apply(p, x, state=s, train=True, key=jax.random.key(3))
    assert not np.allclose(y1, y2)                                     # different dropout masks
    assert not np.allclose(s1["bn_0"]["mean"], s["bn_0"]["mean"])      # statistics moved
    ye, se = m.apply(p, x, state=s1, train=False)
    ye2, _ = m.apply(p, x, state=s1, train=False)
    np.testing.assert_array_equal(ye, ye2)
    jax.tree.map(np.testing.assert_array_equal, se, s1)


@pytest.mark.slow
def test_report_cnn_shapes_and_param_count():
    m = cnn.make(input_shape=(28, 28, 1))
    p = jax.eval_shape(m.init, jax.random.key(0))        # shapes only (test_conv_speed_paths trains this CNN)
    n_params = sum(a.size for a in jax.tree.leaves(p))
    # conv 3*3*1*32+32, 3*3*32*64+64, 3*3*64*64+64, bn 2*64 twice, dense 14*14*64*128+128, head 128*10+10
    assert n_params == 320 + 18496 + 36928 + 256 + 1605760 + 1290
    y, s = jax.eval_shape(lambda p, x: m.apply(p, x, state=m.init_state(), train=True, key=jax.random.key(1)),
                          p, jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32))
    assert y.shape == (3, 10) and set(s) == {"bn_0", "bn_1"}


@pytest.mark.slow
def test_cnn_conv_impls_agree_end_to_end():
    kw = dict(input_shape=(12, 12, 2), layers=("conv:4:3", "act", "conv:6:3:2", "act", "maxpool:2", "flatten"))
    a, b = cnn.make(conv_impl="xla", **kw), cnn.make(conv_impl="im2col", **kw)
    p = a.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (2, 12, 12, 2))
    np.testing.assert_allclose(a.apply(p, x)[0], b.apply(p, x)[0], atol=1e-5)


def test_multi_head_cnn_returns_dict():
    m = cnn.make(input_shape=(16, 16, 1), layers=("conv:4:3", "act", "maxpool:2", "flatten"),
                 heads={"hour": 12, "minute": 60})
    y, _ = m.apply(m.init(jax.random.key(0)), jnp.ones((2, 16, 16, 1)))
    assert {k: v.shape for k, v in y.items()} == {"hour": (2, 12), "minute": (2, 60)}


@pytest.mark.parametrize("spec,match", [(("dense:0",), "positive"), (("conv:3",), "takes"),
                                        (("wobble",), "unknown layer"), (("dropout:1.5",), r"\[0, 1\)"),
                                        (("flatten", "conv:3:3"), "needs an")])
def test_bad_specs_name_the_token(spec, match):
    with pytest.raises(ValueError, match=match):
        sequential.build("t", spec, (8, 8, 1), {"out": 2}).init(jax.random.key(0))


def test_a_new_layer_kind_is_one_table_entry(monkeypatch):
    """A kind added to ``sequential.LAYERS`` parses, sizes, initialises and applies like the built-in ones."""
    scale = sequential.Layer((1,), init=lambda key, a, s: {"s": jnp.full((), float(a[0]))},
                             apply=lambda x, lname, a, s, call: x * call.params[lname]["s"])
    monkeypatch.setitem(sequential.LAYERS, "scale", scale)
    m = sequential.build("t", ("dense:3", "scale:5"), (2,), {"out": 1})
    p = m.init(jax.random.key(0))
    x = jnp.array([[1.0, -2.0]])
    y, _ = m.apply(p, x)
    h = (x @ p["dense_0"]["w"] + p["dense_0"]["b"]) * 5.0
    np.testing.assert_allclose(y, h @ p["head_out"]["w"] + p["head_out"]["b"], rtol=1e-6)
    assert float(p["scale_0"]["s"]) == 5.0


def test_registry_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'no_such_model'"):
        models.get("no_such_model")
    # tests may register more
    assert {"neuron_net", "mlp", "cnn", "gru", "resnet", "transformer", "vit", "text_gru"} <= set(models.REGISTRY)


def test_summary_lists_every_leaf_and_the_total():
    m = models.get("mlp", input_shape=(6,), widths=(4,), batch_norm=True, num_outputs=3)
    params = m.init(jax.random.key(0))
    table = models.summary(params).splitlines()
    assert [line.split()[0] for line in table] == ["bn_0/bias", "bn_0/scale", "dense_0/b", "dense_0/w", "head_out/b",
                                                   "head_out/w", "total"]
    assert table[3].split()[1:3] == ["(6,", "4)"]
    assert models.num_params(params) == 4 + 4 + 4 + 6 * 4 + 3 + 4 * 3 == int(table[-1].split()[-1].replace(",", ""))
