"""Test-time view averaging (jaxml/models/views.py): the image transforms agree with the clock renderer's own
rotation and mirror, predicted directions map back exactly, the averaged model is exactly equivariant and equal
to a loop over the views, training is untouched, and bad settings are named."""
import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxml import models
from jaxml.models import views
from jaxml.tasks import clock as C  # registers the clock objectives and their view maps
from jaxml.train import config as config_lib
from jaxml.train.loop import build_model


def _canonical(hour, minute, style=C.CANONICAL_STYLE):
    return np.asarray(C.render_clock(jax.random.key(0), hour, minute, style), np.float32)


def test_dihedral_views_and_bad_count():
    assert views.dihedral_views(1) == [(0, False)]
    assert views.dihedral_views(4) == [(0, False), (1, False), (2, False), (3, False)]
    assert views.dihedral_views(8)[4:] == [(0, True), (1, True), (2, True), (3, True)]
    with pytest.raises(ValueError, match="n_views must be one of"):
        views.dihedral_views(2)
    with pytest.raises(ValueError, match=r"square images .* shape \(1, 4, 6, 1\)"):
        views.transform_images(jnp.zeros((1, 4, 6, 1)), 1, False)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turn_is_the_renderers_rotation(k):
    """Turning the picture k quarter turns clockwise == rendering the clock rotated by k * 90 degrees."""
    turned = dataclasses.replace(C.CANONICAL_STYLE, rotation_deg=(90.0 * k, 90.0 * k))
    x = _canonical(1, 50)[None, :, :, None]
    got = np.asarray(views.transform_images(jnp.asarray(x), k, False))[0, :, :, 0]
    assert np.abs(got - _canonical(1, 50, turned)).max() <= 1.0
    assert np.abs(got - x[0, :, :, 0]).max() > 200  # not the identity


def test_mirror_reads_the_time_backwards():
    """The canonical clock is mirror-symmetric but for its hands: mirrored 1:50 is 10:10 (t -> 720 - t)."""
    x = _canonical(1, 50)[None, :, :, None]
    got = np.asarray(views.transform_images(jnp.asarray(x), 0, True))[0, :, :, 0]
    assert np.abs(got - _canonical(10, 10)).max() <= 1.0
    assert np.abs(got - x[0, :, :, 0]).max() > 200


def test_directions_map_back_exactly():
    alpha = jnp.asarray(np.random.default_rng(0).uniform(-np.pi, np.pi, (5, 3)), jnp.float32)
    want = jnp.stack([jnp.cos(alpha), jnp.sin(alpha)], -1).reshape(5, 6)
    for k, mirror in views.dihedral_views(8):
        beta = (-alpha if mirror else alpha) + k * np.pi / 2          # g acting on a direction
        seen = jnp.stack([jnp.cos(beta), jnp.sin(beta)], -1).reshape(5, 6)
        np.testing.assert_allclose(views.directions_back(seen, k, mirror), want, atol=2e-6)


def test_time_circles_under_a_mirror():
    """The periodic head's targets for t map to those of 720 - t (and minute m to 60 - m)."""
    t = np.arange(0, 720, 7)
    hour, minute = np.divmod(t, 60)

    def target(h, m):
        return np.stack([np.cos(2 * np.pi * (h * 60 + m) / 720), np.sin(2 * np.pi * (h * 60 + m) / 720),
                         np.cos(2 * np.pi * m / 60), np.sin(2 * np.pi * m / 60)], -1)

    mh, mm = np.divmod((720 - t) % 720, 60)
    np.testing.assert_allclose(C.VIEW_MAPS["angles"](jnp.asarray(target(hour, minute)), 3, True),
                               target(mh, mm), atol=1e-6)
    same = jnp.asarray(target(hour, minute), jnp.float32)
    np.testing.assert_array_equal(C.VIEW_MAPS["angles"](same, 3, False), same)  # rotations: unchanged


def _tiny_cnn(heads):
    return models.get("cnn", input_shape=(20, 20, 1), layers=("conv:4:3", "bn", "act", "maxpool:2", "flatten",
                                                              "dense:8", "act", "dropout:0.5"), heads=heads)


@pytest.mark.slow
@pytest.mark.parametrize("n_views", [4, 8])
def test_averaged_model_is_equivariant_and_equals_a_loop(n_views):
    model = _tiny_cnn({"abs_angles": 6})
    params = model.init(jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (3, 20, 20, 1))
    avg = views.view_averaged(model, n_views, C.VIEW_MAPS, heads={"abs_angles": 6})
    y, _ = avg.apply(params, x, state=model.init_state())
    y = y["abs_angles"]
    loop = []
    for k, m in views.dihedral_views(n_views):
        out, _ = model.apply(params, views.transform_images(x, k, m), state=model.init_state())
        loop.append(views.directions_back(out["abs_angles"], k, m))
    np.testing.assert_allclose(y, sum(loop) / n_views, atol=1e-5)
    single, _ = model.apply(params, x, state=model.init_state())
    assert np.abs(np.asarray(single["abs_angles"] - y)).max() > 1e-3  # a random CNN is not equivariant itself
    for k, m in views.dihedral_views(n_views):  # f_avg(g x) = g . f_avg(x): map it back and compare
        gy, _ = avg.apply(params, views.transform_images(x, k, m), state=model.init_state())
        np.testing.assert_allclose(views.directions_back(gy["abs_angles"], k, m), y, atol=1e-5)


@pytest.mark.slow
def test_training_is_untouched():
    model = _tiny_cnn({"abs_angles": 6})
    params = model.init(jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (4, 20, 20, 1))
    avg = views.view_averaged(model, 8, C.VIEW_MAPS)
    kw = dict(state=model.init_state(), train=True, key=jax.random.key(3))
    (a, sa), (b, sb) = model.apply(params, x, **kw), avg.apply(params, x, **kw)
    np.testing.assert_array_equal(a["abs_angles"], b["abs_angles"])
    jax.tree.map(np.testing.assert_array_equal, sa, sb)
    assert views.view_averaged(model, 1, {}) is model


@pytest.mark.slow
def test_logit_heads_average_log_probabilities_over_rotations():
    model = _tiny_cnn({"hour": 12, "minute": 60})
    params = model.init(jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (2, 20, 20, 1))
    y, _ = views.view_averaged(model, 4, C.VIEW_MAPS).apply(params, x, state=model.init_state())
    outs = [model.apply(params, views.transform_images(x, k, False), state=model.init_state())[0] for k in range(4)]
    for head in ("hour", "minute"):
        want = sum(jax.nn.log_softmax(o[head], -1) for o in outs) / 4
        np.testing.assert_allclose(y[head], want, atol=1e-5)
    with pytest.raises(ValueError, match="'hour' head has no mirror image"):
        views.view_averaged(model, 8, C.VIEW_MAPS, heads={"hour": 12, "minute": 60})


def _config(objective, heads, n_views):
    c = config_lib.base_config()
    c.model = ml_collections.ConfigDict({"name": "cnn", "layers": ("conv:4:3", "act", "flatten"),
                                         "heads": heads, "test_views": n_views})
    c.objective = objective
    return c


def test_build_model_names_bad_view_settings():
    assert build_model(_config("clock_absolute", {"abs_angles": 6}, 8), (20, 20, 1)).apply is not None
    with pytest.raises(config_lib.ConfigError, match=r"config.model.test_views must be one of \(1, 4, 8\), got 3"):
        build_model(_config("clock_absolute", {"abs_angles": 6}, 3), (20, 20, 1))
    with pytest.raises(config_lib.ConfigError, match="test_views=4"):
        build_model(_config("clock_heads", {"hour": 12, "minute": 60}, 8), (20, 20, 1))
    with pytest.raises(config_lib.ConfigError, match="objective 'softmax_xent' does not say how its outputs"):
        build_model(_config("softmax_xent", {"out": 10}, 4), (20, 20, 1))
