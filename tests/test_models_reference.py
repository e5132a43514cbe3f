"""The ResNet, Transformer and text GRU models against torch built on the same weights, and their padding rules:
a torch ResNet of basic blocks (train and eval batch norm), torch's pre-LN TransformerEncoderLayer with a key
padding mask, and torch's bidirectional GRU over packed sequences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import models
from jaxml.models import text_gru

torch = pytest.importorskip("torch")
tnn = torch.nn

RNG = np.random.default_rng(0)


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float32).copy())


def _set(module, **tensors):
    with torch.no_grad():
        for name, value in tensors.items():
            getattr(module, name).copy_(value)


def _torch_conv(p, stride, bn_p, bn_s):
    k = p["w"].shape[0]
    conv = tnn.Conv2d(p["w"].shape[2], p["w"].shape[3], k, stride, padding=k // 2 if stride == 1 else 0)
    _set(conv, weight=_t(p["w"]).permute(3, 2, 0, 1), bias=_t(p["b"]))
    if stride == 2 and k == 3:      # "SAME" of an even size at stride 2 pads 0 before, 1 after (TF, flax, ours)
        conv = tnn.Sequential(tnn.ZeroPad2d((0, 1, 0, 1)), conv)
    bn = tnn.BatchNorm2d(p["w"].shape[3], eps=1e-5, momentum=0.1)
    _set(bn, weight=_t(bn_p["scale"]), bias=_t(bn_p["bias"]), running_mean=_t(bn_s["mean"]),
         running_var=_t(bn_s["var"]))
    return tnn.Sequential(conv, bn)


class _Block(tnn.Module):
    def __init__(self, p, s, stride):
        super().__init__()
        self.a = _torch_conv(p["conv1"], stride, p["bn1"], s["bn1"])
        self.b = _torch_conv(p["conv2"], 1, p["bn2"], s["bn2"])
        self.proj = _torch_conv(p["proj"], stride, p["proj_bn"], s["proj_bn"]) if "proj" in p else tnn.Identity()

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))) + self.proj(x))


@pytest.mark.parametrize("train", [False, True])
def test_resnet_equals_torch_basic_blocks(train):
    model = models.get("resnet", input_shape=(8, 8, 3), stages=(2, 1), widths=(4, 6), num_outputs=5, conv_impl="xla")
    params = model.init(jax.random.key(0))
    params = jax.tree.map(lambda p: p + 0.1 * jnp.asarray(RNG.normal(size=p.shape), jnp.float32), params)
    state = jax.tree.map(lambda s: s + jnp.asarray(RNG.uniform(0, 0.5, size=s.shape), jnp.float32), model.init_state())
    x = RNG.normal(size=(4, 8, 8, 3)).astype(np.float32)
    ours, _ = jax.jit(model.apply, static_argnames="train")(params, jnp.asarray(x), state=state, train=train)
    ref = tnn.Sequential(_torch_conv(params["stem"]["conv"], 1, params["stem"]["bn"], state["stem"]["bn"]), tnn.ReLU(),
                         _Block(params["s0b0"], state["s0b0"], 1), _Block(params["s0b1"], state["s0b1"], 1),
                         _Block(params["s1b0"], state["s1b0"], 2))
    head = tnn.Linear(6, 5)
    _set(head, weight=_t(params["head"]["w"]).T, bias=_t(params["head"]["b"]))
    ref.train(train)
    with torch.no_grad():
        want = head(ref(_t(x).permute(0, 3, 1, 2)).mean((2, 3))).numpy()
    assert "proj" in params["s1b0"] and "proj" not in params["s0b1"]
    np.testing.assert_allclose(np.asarray(ours), want, atol=2e-4, rtol=1e-4)


def test_resnet_shapes_and_faults():
    r20 = models.get("resnet", input_shape=(32, 32, 3))               # ResNet-20 with projection shortcuts
    params = jax.eval_shape(r20.init, jax.random.key(0))
    conv_w = 27 * 16 + 6 * 9 * 16 * 16 + 9 * 16 * 32 + 5 * 9 * 32 * 32 + 9 * 32 * 64 + 5 * 9 * 64 * 64
    proj_w, conv_b, bn = 16 * 32 + 32 * 64, 16 + 6 * 16 + 7 * 32 + 7 * 64, 2 * (16 + 6 * 16 + 7 * 32 + 7 * 64)
    assert models.num_params(params) == conv_w + proj_w + conv_b + bn + 64 * 10 + 10 == 273_258
    r18 = models.get("resnet", input_shape=(64, 64, 3), stages=(2, 2, 2, 2), widths=(64, 128, 256, 512),
                     stem="imagenet", num_outputs=7, conv_impl="xla")
    y, _ = jax.eval_shape(r18.apply, jax.eval_shape(r18.init, jax.random.key(0)), jnp.zeros((2, 64, 64, 3)))
    assert y.shape == (2, 7)
    with pytest.raises(ValueError, match="stages .* and widths .* must be positive and of equal length"):
        models.get("resnet", input_shape=(8, 8, 1), stages=(1, 1), widths=(4,))
    with pytest.raises(ValueError, match="stem must be one of"):
        models.get("resnet", input_shape=(8, 8, 1), stem="big")


def _transformer(pool="mean"):
    return models.get("transformer", input_shape=(6,), vocab_size=20, dim=8, depth=1, heads=2, mlp_dim=16,
                      pool=pool, num_outputs=3)


def test_transformer_block_equals_torch_pre_ln_encoder_layer():
    model = _transformer()
    params = jax.tree.map(lambda p: p + 0.1 * jnp.asarray(RNG.normal(size=p.shape), jnp.float32),
                          model.init(jax.random.key(1)))
    tokens = np.array([[3, 5, 7, 2, 0, 0], [1, 2, 3, 4, 5, 6], [9, 0, 0, 0, 0, 0]])
    ours, _ = model.apply(params, jnp.asarray(tokens))
    b = params["block_0"]
    layer = tnn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    _set(layer.self_attn, in_proj_weight=torch.cat([_t(b["attn"][n]["w"]).T for n in "qkv"]),
         in_proj_bias=torch.cat([_t(b["attn"][n]["b"]) for n in "qkv"]))
    _set(layer.self_attn.out_proj, weight=_t(b["attn"]["o"]["w"]).T, bias=_t(b["attn"]["o"]["b"]))
    for ours_name, mod in (("mlp_in", layer.linear1), ("mlp_out", layer.linear2)):
        _set(mod, weight=_t(b[ours_name]["w"]).T, bias=_t(b[ours_name]["b"]))
    for ours_name, mod in (("ln1", layer.norm1), ("ln2", layer.norm2)):
        _set(mod, weight=_t(b[ours_name]["scale"]), bias=_t(b[ours_name]["bias"]))
    final = tnn.LayerNorm(8)
    _set(final, weight=_t(params["ln_out"]["scale"]), bias=_t(params["ln_out"]["bias"]))
    layer.eval()
    pad = torch.from_numpy(tokens == 0)
    with torch.no_grad():
        h = _t(params["embed"]["table"])[torch.from_numpy(tokens)] + _t(params["pos"]["table"])
        h = final(layer(h, src_key_padding_mask=pad))
        real = (~pad).float()[..., None]
        pooled = (h * real).sum(1) / real.sum(1)
        want = pooled.numpy() @ np.asarray(params["head_out"]["w"]) + np.asarray(params["head_out"]["b"])
    np.testing.assert_allclose(np.asarray(ours), want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("pool", ["mean", "cls"])
def test_transformer_padding_never_changes_the_logits(pool):
    short, long_ = _transformer(pool), models.get("transformer", input_shape=(9,), vocab_size=20, dim=8, depth=1,
                                                 heads=2, mlp_dim=16, pool=pool, num_outputs=3)
    params = short.init(jax.random.key(2))
    params["head_out"]["w"] = jnp.asarray(RNG.normal(size=(8, 3)), jnp.float32)      # zero-initialised head
    params_long = dict(params, pos={"table": jnp.concatenate([params["pos"]["table"], jnp.ones((3, 8))])})
    tokens = np.array([[3, 5, 7, 2, 0, 0], [1, 2, 3, 4, 5, 6]])
    a, _ = short.apply(params, jnp.asarray(tokens))
    b, _ = long_.apply(params_long, jnp.asarray(np.pad(tokens, ((0, 0), (0, 3)))))
    c, _ = short.apply(params, jnp.asarray(np.where(tokens == 0, 11, tokens)), lengths=jnp.asarray([4, 6]))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    np.testing.assert_allclose(np.asarray(a), np.asarray(c), atol=1e-5)       # lengths instead of the pad id
    assert np.abs(np.asarray(a)).max() > 1e-2


def test_vit_shapes_and_faults():
    vit = models.get("vit", input_shape=(28, 28, 1), patch_size=7, dim=16, depth=2, heads=2, mlp_dim=32)
    params = jax.eval_shape(vit.init, jax.random.key(0))          # shapes only: no compile
    assert params["pos"]["table"].shape == (17, 16) and params["cls"].shape == (16,)
    y, _ = jax.eval_shape(vit.apply, params, jax.ShapeDtypeStruct((3, 28, 28, 1), jnp.float32))
    assert y.shape == (3, 10)
    with pytest.raises(ValueError, match="divisible by patch_size 5"):
        models.get("vit", input_shape=(28, 28, 1), patch_size=5)
    with pytest.raises(ValueError, match="needs input_shape \\(length,\\) and vocab_size > 0"):
        models.get("transformer", input_shape=(10,))
    with pytest.raises(ValueError, match="pool must be one of"):
        models.get("vit", input_shape=(28, 28, 1), pool="max")


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_text_gru_equals_torch_bidirectional_packed_gru(pool):
    model = models.get("text_gru", input_shape=(7,), vocab_size=15, embed_dim=5, hidden=(6,), bidirectional=True,
                       pool=pool, num_outputs=2)
    params = jax.tree.map(lambda p: p + 0.1 * jnp.asarray(RNG.normal(size=p.shape), jnp.float32),
                          model.init(jax.random.key(3)))
    tokens = np.array([[3, 5, 7, 2, 0, 0, 0], [1, 2, 3, 4, 5, 6, 14], [9, 0, 0, 0, 0, 0, 0]])
    lengths = (tokens != 0).sum(1)
    ours, _ = model.apply(params, jnp.asarray(tokens))
    ref = tnn.GRU(5, 6, batch_first=True, bidirectional=True)
    for d, suffix in (("fwd", "l0"), ("bwd", "l0_reverse")):
        p = params[f"gru_{d}_0"]
        _set(ref, **{f"weight_ih_{suffix}": _t(p["w_i"]).T, f"weight_hh_{suffix}": _t(p["w_h"]).T,
                     f"bias_ih_{suffix}": _t(p["b_i"]), f"bias_hh_{suffix}": _t(p["b_h"])})
    with torch.no_grad():
        e = _t(params["embed"]["table"])[torch.from_numpy(tokens)]
        packed = tnn.utils.rnn.pack_padded_sequence(e, torch.from_numpy(lengths), batch_first=True,
                                                    enforce_sorted=False)
        out, h_n = ref(packed)
        if pool == "last":
            pooled = torch.cat([h_n[0], h_n[1]], dim=-1)
        else:
            hs, _ = tnn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=7)
            pooled = hs.sum(1) / torch.from_numpy(lengths)[:, None].float()
    want = pooled.numpy() @ np.asarray(params["head_out"]["w"]) + np.asarray(params["head_out"]["b"])
    np.testing.assert_allclose(np.asarray(ours), want, atol=2e-5, rtol=1e-5)


def test_reverse_within_lengths_keeps_padding_in_place():
    x = jnp.asarray([[1, 2, 3, 0], [5, 6, 7, 8]])
    np.testing.assert_array_equal(np.asarray(text_gru.reverse_within_lengths(x, jnp.asarray([3, 4]))),
                                  [[3, 2, 1, 0], [8, 7, 6, 5]])
    with pytest.raises(ValueError, match="vocab_size=0"):
        models.get("text_gru", input_shape=(7,), vocab_size=0)
