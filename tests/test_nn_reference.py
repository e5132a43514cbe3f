"""New layers (jaxml/nn/{attention,embedding,normalization,residual}.py) and batch norm against independent
implementations on the same weights: torch.nn.MultiheadAttention (padding and causal masks), LayerNorm,
Embedding, BatchNorm2d (train and eval outputs) and flax's BatchNorm (its biased running variance)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.nn import attention, embedding, layers, normalization, residual

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _normal(n, loc=0.0, scale=1.0):
    return jnp.asarray(RNG.normal(loc, scale, size=n), jnp.float32)


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float32).copy())


def _mha_pair(features=12, heads=3):
    params = attention.init_attention(jax.random.key(1), features, heads)
    params = jax.tree.map(lambda p: p + 0.1 * jnp.asarray(RNG.normal(size=p.shape), jnp.float32), params)  # biases != 0
    ref = torch.nn.MultiheadAttention(features, heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([_t(params[n]["w"]).T for n in "qkv"]))
        ref.in_proj_bias.copy_(torch.cat([_t(params[n]["b"]) for n in "qkv"]))
        ref.out_proj.weight.copy_(_t(params["o"]["w"]).T)
        ref.out_proj.bias.copy_(_t(params["o"]["b"]))
    return params, ref.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_torch_with_padding_and_causal_masks(causal):
    b, t, d, h = 3, 7, 12, 3
    params, ref = _mha_pair(d, h)
    x = RNG.normal(size=(b, t, d)).astype(np.float32)
    lengths = np.array([7, 4, 1])
    mask = attention.padding_mask(lengths, t)
    if causal:
        mask = mask & attention.causal_mask(t)
    ours = np.asarray(attention.attention(params, jnp.asarray(x), num_heads=h, mask=mask))
    with torch.no_grad():
        want, _ = ref(_t(x), _t(x), _t(x), key_padding_mask=torch.from_numpy(np.arange(t)[None] >= lengths[:, None]),
                      attn_mask=torch.ones(t, t, dtype=torch.bool).triu(1) if causal else None, need_weights=False)
    np.testing.assert_allclose(ours, want.numpy(), atol=2e-5, rtol=1e-5)


def test_attention_cross_inputs_and_token_mask():
    params, ref = _mha_pair(8, 2)
    q, kv = RNG.normal(size=(2, 3, 8)).astype(np.float32), RNG.normal(size=(2, 5, 8)).astype(np.float32)
    tokens = np.array([[4, 9, 2, 0, 0], [1, 1, 1, 1, 3]])
    ours = attention.attention(params, jnp.asarray(q), jnp.asarray(kv), num_heads=2,
                               mask=attention.token_mask(jnp.asarray(tokens)))
    with torch.no_grad():
        want, _ = ref(_t(q), _t(kv), _t(kv), key_padding_mask=torch.from_numpy(tokens == 0), need_weights=False)
    np.testing.assert_allclose(np.asarray(ours), want.numpy(), atol=2e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        attention.init_attention(jax.random.key(0), 10, 3)


def test_masked_keys_do_not_change_the_output():
    params, _ = _mha_pair(8, 2)
    x = RNG.normal(size=(1, 6, 8)).astype(np.float32)
    y = RNG.normal(size=(1, 6, 8)).astype(np.float32)
    y[:, :4] = x[:, :4]                                        # same first 4 positions, other padding
    mask = attention.padding_mask(np.array([4]), 6)
    a = attention.attention(params, jnp.asarray(x), num_heads=2, mask=mask)
    b = attention.attention(params, jnp.asarray(y), num_heads=2, mask=mask)
    np.testing.assert_allclose(np.asarray(a)[:, :4], np.asarray(b)[:, :4], atol=1e-6)
    assert np.isfinite(np.asarray(attention.attention(params, jnp.asarray(x), num_heads=2,
                                                      mask=attention.padding_mask(np.array([0]), 6)))).all()


def test_layer_norm_equals_torch():
    x = RNG.normal(3.0, 2.0, size=(4, 5, 16)).astype(np.float32)
    params = {"scale": _normal(16), "bias": _normal(16)}
    ref = torch.nn.LayerNorm(16, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(_t(params["scale"]))
        ref.bias.copy_(_t(params["bias"]))
        want = ref(_t(x)).numpy()
    np.testing.assert_allclose(np.asarray(normalization.layer_norm(params, jnp.asarray(x))), want, atol=1e-5)
    np.testing.assert_allclose(np.asarray(normalization.layer_norm(normalization.init_layer_norm(16), jnp.asarray(x))),
                               torch.nn.functional.layer_norm(_t(x), (16,)).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="x has 16 features, params have 8"):
        normalization.layer_norm(normalization.init_layer_norm(8), jnp.asarray(x))


def test_embedding_equals_torch_and_positions_check_length():
    params = embedding.init_embedding(jax.random.key(2), 11, 6)
    ids = np.array([[0, 3, 10], [7, 7, 1]])
    ref = torch.nn.Embedding(11, 6)
    with torch.no_grad():
        ref.weight.copy_(_t(params["table"]))
        want = ref(torch.from_numpy(ids)).numpy()
    np.testing.assert_array_equal(np.asarray(embedding.embedding(params, jnp.asarray(ids))), want)
    pos = embedding.init_positions(jax.random.key(3), 4, 6)
    x = jnp.zeros((2, 3, 6))
    np.testing.assert_array_equal(np.asarray(embedding.add_positions(pos, x))[1], np.asarray(pos["table"])[:3])
    with pytest.raises(ValueError, match="sequence length 5 exceeds the 4 learned positions"):
        embedding.add_positions(pos, jnp.zeros((1, 5, 6)))


def test_patch_embedding_equals_a_stride_p_convolution():
    x = RNG.normal(size=(2, 8, 12, 3)).astype(np.float32)
    params = embedding.init_patch_embedding(jax.random.key(4), 4, 3, 5)
    ref = torch.nn.Conv2d(3, 5, 4, stride=4)
    with torch.no_grad():                        # our kernel rows are (row, column, channel): HWIO reshaped
        ref.weight.copy_(_t(params["w"]).reshape(4, 4, 3, 5).permute(3, 2, 0, 1))
        ref.bias.copy_(_t(params["b"]))
        want = ref(_t(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(2, 6, 5).numpy()
    np.testing.assert_allclose(np.asarray(embedding.patch_embedding(params, jnp.asarray(x), 4)), want, atol=1e-5)
    with pytest.raises(ValueError, match="patch size 5 does not divide the image size 8x12"):
        embedding.patchify(jnp.asarray(x), 5)


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_equals_torch_and_flax(train):
    """Outputs == torch BatchNorm2d (train: batch statistics; eval: running ones). Running statistics ==
    flax's BatchNorm, which like ours (and Keras) updates the variance with the biased batch variance
    (torch uses the unbiased one)."""
    from flax import linen as nn
    x = RNG.normal(1.0, 3.0, size=(6, 3, 4, 5)).astype(np.float32)
    params = {"scale": _normal(5), "bias": _normal(5)}
    state = {"mean": _normal(5), "var": jnp.asarray(RNG.uniform(0.5, 2, 5), jnp.float32)}
    y, new_state = layers.batch_norm(params, state, jnp.asarray(x), train=train, momentum=0.9, eps=1e-3)
    ref = torch.nn.BatchNorm2d(5, eps=1e-3, momentum=0.1)
    with torch.no_grad():
        ref.weight.copy_(_t(params["scale"]))
        ref.bias.copy_(_t(params["bias"]))
        ref.running_mean.copy_(_t(state["mean"]))
        ref.running_var.copy_(_t(state["var"]))
        ref.train(train)
        want = ref(_t(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(np.asarray(y), want, atol=2e-5, rtol=1e-5)
    bn = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-3)
    variables = {"params": params, "batch_stats": state}
    y_flax, updated = bn.apply(variables, jnp.asarray(x), mutable=["batch_stats"])
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_flax), atol=2e-5, rtol=1e-5)
    for k in ("mean", "var"):
        np.testing.assert_allclose(np.asarray(new_state[k]), np.asarray(updated["batch_stats"][k]),
                                   rtol=1e-5, atol=1e-6)
    if train:
        np.testing.assert_allclose(np.asarray(new_state["mean"]), ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)


def test_stochastic_depth_drops_whole_examples_at_the_rate():
    x, f = jnp.ones((4000, 3, 2)), 2.0 * jnp.ones((4000, 3, 2))
    key = jax.random.key(7)
    y = np.asarray(residual.stochastic_depth(x, f, 0.25, train=True, key=key))
    per_example = y.reshape(4000, -1)
    assert set(np.unique(per_example).tolist()) <= {1.0, float(np.float32(1.0) + np.float32(2.0) / np.float32(0.75))}
    assert (per_example == per_example[:, :1]).all()                         # one draw per example
    assert abs((per_example[:, 0] == 1.0).mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 4000)
    keep = np.asarray(layers.dropout_keep(key, 0.75, (4000,)))
    np.testing.assert_array_equal(per_example[:, 0] > 1.0, keep)             # the dropout mask of (key, example)
    ids = jnp.arange(100, 104)
    np.testing.assert_array_equal(np.asarray(residual.stochastic_depth(x[:4], f[:4], 0.25, train=True, key=key,
                                                                       example_ids=ids)), y[100:104])
    np.testing.assert_array_equal(np.asarray(residual.stochastic_depth(x, f, 0.25, train=False)), 3.0)


def test_residual_pooling_and_masked_mean():
    x = jnp.asarray(RNG.normal(size=(2, 3, 4, 5)), jnp.float32)
    np.testing.assert_allclose(np.asarray(residual.residual(lambda v: 2 * v, x)), 3 * np.asarray(x), rtol=1e-6)
    with pytest.raises(ValueError, match="add a projection"):
        residual.residual(lambda v: v[..., :2], x)
    np.testing.assert_allclose(np.asarray(residual.global_avg_pool(x)), np.asarray(x).mean((1, 2)), rtol=1e-6)
    seq = jnp.asarray([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    np.testing.assert_allclose(np.asarray(residual.masked_mean(seq, jnp.asarray([[1, 1, 0], [1, 1, 1]]))),
                               [[2.0], [4.0]])
