"""The from-scratch tutorial's worked numbers (Victor Zhou, "An Introduction to Neural Networks")."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import losses
from jaxml.models import neuron
from jaxml.tasks import toy


def _ones_net():
    return {n: {"w": jnp.array([1.0, 1.0]), "b": jnp.array(0.0)} for n in neuron.NEURONS}


def test_neuron_feedforward():
    y = neuron.neuron({"w": jnp.array([0.0, 1.0]), "b": jnp.array(4.0)}, jnp.array([2.0, 3.0]))
    np.testing.assert_allclose(float(y), 0.9990889488055994, rtol=1e-6)


def test_network_feedforward():
    params = {n: {"w": jnp.array([0.0, 1.0]), "b": jnp.array(0.0)} for n in neuron.NEURONS}
    np.testing.assert_allclose(float(neuron.network(params, jnp.array([2.0, 3.0]))), 0.7216325609518421, rtol=1e-6)


def test_mse_of_zero_predictions():
    y_true = jnp.array([1.0, 0.0, 0.0, 1.0])
    assert float(losses.mse(jnp.zeros(4), y_true).mean()) == pytest.approx(0.5)


def test_grad_matches_tutorial_chain_rule_for_all_nine_parameters():
    """Alice only, all weights 1 and biases 0: jax.grad == the tutorial's hand-derived partials."""
    x, y = np.array([-2.0, -1.0]), 1.0
    params = _ones_net()
    g = jax.grad(lambda p: jnp.square(y - neuron.network(p, jnp.asarray(x))))(params)
    assert float(g["h1"]["w"][0]) == pytest.approx(0.02147, abs=5e-5)   # the tutorial's dL/dw1 = 0.0214

    def sig(v):
        return 1 / (1 + np.exp(-v))

    def dsig(v):
        return sig(v) * (1 - sig(v))

    w1 = w2 = w3 = w4 = w5 = w6 = 1.0
    b1 = b2 = b3 = 0.0
    sum_h1 = w1 * x[0] + w2 * x[1] + b1
    sum_h2 = w3 * x[0] + w4 * x[1] + b2
    h1, h2 = sig(sum_h1), sig(sum_h2)
    sum_o1 = w5 * h1 + w6 * h2 + b3
    d_l_d_ypred = -2 * (y - sig(sum_o1))
    d_ypred = {"w5": h1 * dsig(sum_o1), "w6": h2 * dsig(sum_o1), "b3": dsig(sum_o1),
               "h1": w5 * dsig(sum_o1), "h2": w6 * dsig(sum_o1)}
    expected = {
        ("h1", "w", 0): d_ypred["h1"] * x[0] * dsig(sum_h1), ("h1", "w", 1): d_ypred["h1"] * x[1] * dsig(sum_h1),
        ("h1", "b", None): d_ypred["h1"] * dsig(sum_h1),
        ("h2", "w", 0): d_ypred["h2"] * x[0] * dsig(sum_h2), ("h2", "w", 1): d_ypred["h2"] * x[1] * dsig(sum_h2),
        ("h2", "b", None): d_ypred["h2"] * dsig(sum_h2),
        ("o1", "w", 0): d_ypred["w5"], ("o1", "w", 1): d_ypred["w6"], ("o1", "b", None): d_ypred["b3"],
    }
    assert len(expected) == 9
    for (n, leaf, i), partial in expected.items():
        got = g[n][leaf] if i is None else g[n][leaf][i]
        np.testing.assert_allclose(float(got), d_l_d_ypred * partial, rtol=1e-5, err_msg=f"{n}.{leaf}[{i}]")


def test_data_is_the_tutorials():
    d = toy.zhou_gender()
    np.testing.assert_array_equal(d["x"], [[-2, -1], [25, 6], [17, 4], [-15, -6]])
    np.testing.assert_array_equal(d["y"], [1, 0, 0, 1])
