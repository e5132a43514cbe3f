"""GRU: the explainer's hand example, scan == Python loop, lengths, flax and PyTorch equality."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxml.models import gru

H, D = 2, 3


def _hand_params():
    """Hidden 2, input 3. The explainer's own W/U/b could not be recovered (the page is not in any
    corpus we can reach); these reproduce its step-1 pre-activations exactly — reset [0.29, 0.50],
    update [0.56, 0.61], candidate [0.50, 0.81] for x1 = [0.5, 0.1, 0.4] — which is all its published
    step-1 numbers depend on (h0 = 0 zeroes U)."""
    w = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])          # W x1 = [0.19, 0.49]
    b = {"r": [0.10, 0.01], "z": [0.37, 0.12], "n": [0.31, 0.32]}
    u = {"r": [[0.2, -0.1], [0.3, 0.4]], "z": [[0.5, 0.1], [-0.2, 0.3]], "n": [[0.3, 0.6], [0.1, -0.4]]}
    return {"w_i": jnp.asarray(np.concatenate([w.T, w.T, w.T], axis=1), jnp.float32),
            "w_h": jnp.asarray(np.concatenate([np.array(u[g]).T for g in "rzn"], axis=1), jnp.float32),
            "b_i": jnp.asarray(np.concatenate([b[g] for g in "rzn"]), jnp.float32),
            "b_h": jnp.zeros(3 * H)}, w, b, u


def _numpy_cho(x_seq, w, b, u):
    """Independent float64 reference of the reset-before form, explainer notation."""
    def sig(v):
        return 1 / (1 + np.exp(-v))

    h, out = np.zeros(H), []
    for x in x_seq:
        r = sig(w @ x + b["r"] + np.array(u["r"]) @ h)
        z = sig(w @ x + b["z"] + np.array(u["z"]) @ h)
        n = np.tanh(w @ x + b["n"] + np.array(u["n"]) @ (r * h))
        h = z * h + (1 - z) * n
        out.append((r, z, n, h))
    return out


def test_explainer_step_one_numbers():
    params, w, b, u = _hand_params()
    x1 = jnp.array([[0.5, 0.1, 0.4]])
    xp = x1 @ params["w_i"] + params["b_i"]
    r = jax.nn.sigmoid(xp[0, :H])
    z = jax.nn.sigmoid(xp[0, H:2 * H])
    np.testing.assert_allclose(r, [0.572, 0.622], atol=5e-4)           # R1 as published
    np.testing.assert_allclose(z, [0.63645, 0.64794], atol=1e-5)        # exact Z1
    np.testing.assert_allclose(jnp.tanh(xp[0, 2 * H:]), [0.46212, 0.66959], atol=1e-5)
    h1 = gru.cell(params, jnp.zeros((1, H)), x1, reset_after=False)
    np.testing.assert_allclose(h1[0], [0.16800, 0.23574], atol=1e-5)


def test_reset_before_matches_independent_reference_over_a_sequence():
    params, w, b, u = _hand_params()
    xs = np.array([[0.5, 0.1, 0.4], [0.2, 0.7, 0.1], [0.9, 0.3, 0.5]])
    ref = _numpy_cho(xs, w, b, u)
    _, hs = gru.scan(params, jnp.asarray(xs[None], jnp.float32), reset_after=False)
    np.testing.assert_allclose(hs[0], np.stack([s[3] for s in ref]), atol=1e-6)
    # and the two conventions really differ once h != 0
    _, hs_after = gru.scan(params, jnp.asarray(xs[None], jnp.float32), reset_after=True)
    assert np.abs(np.asarray(hs_after[0, 1:] - hs[0, 1:])).max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("reset_after", [True, False])
def test_scan_equals_python_loop(reset_after):
    p = gru.init_layer(jax.random.key(0), 5, 7)
    p = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(1), a.shape), p)
    xs = jax.random.normal(jax.random.key(2), (4, 9, 5))
    h_last, hs = gru.scan(p, xs, reset_after=reset_after)
    h = jnp.zeros((4, 7))
    for t in range(9):
        h = gru.cell(p, h, xs[:, t], reset_after=reset_after)
        np.testing.assert_allclose(hs[:, t], h, atol=1e-5)
    np.testing.assert_allclose(h_last, h, atol=1e-5)


@pytest.mark.slow
def test_lengths_freeze_state_after_each_sequence_end():
    p = gru.init_layer(jax.random.key(0), 3, 4)
    xs = jax.random.normal(jax.random.key(1), (3, 8, 3))
    lengths = jnp.array([8, 5, 1])
    h_last, hs = gru.scan(p, xs, lengths=lengths)
    for b, n in enumerate([8, 5, 1]):
        h_ref, _ = gru.scan(p, xs[b:b + 1, :n])
        np.testing.assert_allclose(h_last[b], h_ref[0], atol=1e-5)
        np.testing.assert_array_equal(np.asarray(hs[b, n:]), 0.0)


@pytest.mark.slow
def test_stacked_model_shapes_and_sequence_output():
    def shapes(model, x_shape):        # abstract evaluation: the shapes and the checks, no compile
        return jax.eval_shape(lambda p, x: model.apply(p, x), jax.eval_shape(model.init, jax.random.key(0)),
                              jax.ShapeDtypeStruct(x_shape, jnp.float32))
    m = gru.make(input_features=3, hidden=(8, 6), num_outputs=4, return_sequences=True)
    y, state = shapes(m, (2, 5, 3))
    assert y.shape == (2, 5, 4) and state == {}
    assert jax.eval_shape(m.init, jax.random.key(0))["gru_1"]["w_i"].shape == (8, 18)
    m1 = gru.make(input_features=3, hidden=(8,), num_outputs=1)
    assert shapes(m1, (2, 5, 3))[0].shape == (2,)
    with pytest.raises(ValueError, match="expects x of shape"):
        shapes(m1, (2, 5, 4))


def test_reset_after_equals_flax_grucell():
    import flax.linen as nn
    cell = nn.GRUCell(features=6)
    x = jax.random.normal(jax.random.key(0), (3, 4))
    h0 = jax.random.normal(jax.random.key(1), (3, 6))
    fp = cell.init(jax.random.key(2), h0, x)["params"]
    fp = jax.tree.map(lambda a: a + 0.05, fp)  # non-zero biases everywhere flax has them
    ours = {"w_i": jnp.concatenate([fp["ir"]["kernel"], fp["iz"]["kernel"], fp["in"]["kernel"]], axis=1),
            "b_i": jnp.concatenate([fp["ir"]["bias"], fp["iz"]["bias"], fp["in"]["bias"]]),
            "w_h": jnp.concatenate([fp["hr"]["kernel"], fp["hz"]["kernel"], fp["hn"]["kernel"]], axis=1),
            "b_h": jnp.concatenate([jnp.zeros(6), jnp.zeros(6), fp["hn"]["bias"]])}
    h_flax, _ = cell.apply({"params": fp}, h0, x)
    np.testing.assert_allclose(gru.cell(ours, h0, x, reset_after=True), h_flax, atol=1e-5)


def test_reset_after_equals_torch_gru_sequence():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.GRU(input_size=4, hidden_size=5, num_layers=2, batch_first=True)
    x = torch.randn(3, 7, 4)
    with torch.no_grad():
        y_t, h_t = net(x)
    params = {f"gru_{k}": {"w_i": jnp.asarray(getattr(net, f"weight_ih_l{k}").detach().numpy().T),
                           "w_h": jnp.asarray(getattr(net, f"weight_hh_l{k}").detach().numpy().T),
                           "b_i": jnp.asarray(getattr(net, f"bias_ih_l{k}").detach().numpy()),
                           "b_h": jnp.asarray(getattr(net, f"bias_hh_l{k}").detach().numpy())} for k in range(2)}
    hs = jnp.asarray(x.numpy())
    lasts = []
    for k in range(2):
        h_last, hs = gru.scan(params[f"gru_{k}"], hs, reset_after=True)
        lasts.append(h_last)
    np.testing.assert_allclose(hs, y_t.numpy(), atol=1e-5)
    np.testing.assert_allclose(jnp.stack(lasts), h_t.numpy(), atol=1e-5)


def _autodiff_scan(params, xs, h0, lengths, reset_after):
    """Reference: the cell in a plain lax.scan, differentiated by JAX (no custom VJP)."""
    xp = jnp.swapaxes(xs @ params["w_i"] + params["b_i"], 0, 1)
    valid = jnp.arange(xs.shape[1])[:, None] < lengths[None, :]

    def step(h, inp):
        xp_t, v = inp
        h = jnp.where(v[:, None], gru.cell_from_projection(params, h, xp_t, reset_after=reset_after), h)
        return h, jnp.where(v[:, None], h, 0.0)
    h_last, hs = jax.lax.scan(step, h0, (xp, valid))
    return h_last, jnp.swapaxes(hs, 0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("reset_after", [True, False])
def test_gradients_equal_autodiff_of_plain_scan(reset_after):
    """gru.scan's backward (for reset_after its custom VJP: hand-derived gate gradients, dU, dW_i
    and dx as one matmul each after the loop) against jax.grad of the cell in a plain lax.scan, for params, h0
    and the inputs."""
    p = gru.init_layer(jax.random.key(0), 5, 6)
    p = jax.tree.map(lambda a: a + 0.2 * jax.random.normal(jax.random.key(1), a.shape), p)
    xs = jax.random.normal(jax.random.key(2), (3, 7, 5))
    h0 = 0.5 * jax.random.normal(jax.random.key(3), (3, 6))
    lengths = jnp.array([7, 4, 1])
    target = jax.random.normal(jax.random.key(4), (3, 7, 6))

    def loss(fn, args):
        p, xs, h0 = args
        h_last, hs = fn(p, xs, h0)
        return jnp.sum(jnp.sin(h_last)) + jnp.sum((hs - target) ** 2)
    ours = jax.grad(lambda a: loss(lambda p, x, h: gru.scan(p, x, h, reset_after=reset_after, lengths=lengths), a))
    ref = jax.grad(lambda a: loss(lambda p, x, h: _autodiff_scan(p, x, h, lengths, reset_after), a))
    g, g_ref = ours((p, xs, h0)), ref((p, xs, h0))
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(g[0]["w_h"]).max()) > 1e-2                    # the case is not degenerate


@pytest.mark.slow
def test_gru_layer_check_grads_float64():
    """Finite differences (float64) against gru.scan's custom VJP, with lengths (frozen rows) and an unroll
    that does not divide T, for the params, h0 and the inputs."""
    with jax.enable_x64(True):
        k = jax.random.split(jax.random.key(0), 4)
        p = jax.tree.map(lambda a: a.astype(jnp.float64), gru.init_layer(k[0], 3, 4))
        p = jax.tree.map(lambda a, kk: a + 0.3 * jax.random.normal(kk, a.shape, jnp.float64), p,
                         dict(zip(p, jax.random.split(k[1], len(p)))))
        xs = jax.random.normal(k[2], (2, 5, 3), jnp.float64)
        h0 = 0.5 * jax.random.normal(k[3], (2, 4), jnp.float64)

        @jax.jit      # compiled once for check_grads' many evaluations (eager, each op is its own program)
        def loss(p, xs, h0):
            h_last, hs = gru.scan(p, xs, h0, lengths=jnp.array([5, 3]), unroll=2)
            return jnp.sum(h_last ** 3) + jnp.sum(jnp.cos(hs))
        check_grads(loss, (p, xs, h0), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


def test_empty_time_axis_is_a_clear_error():
    p = gru.init_layer(jax.random.key(0), 3, 4)
    with pytest.raises(ValueError, match="empty time axis"):
        gru.scan(p, jnp.zeros((2, 0, 3)))
