"""One accelerator script: each training feature of issue 30, briefly, on whatever backend JAX finds.

    python bench/accelerator.py [--quick] [--repeats=5]

Times the MLP, CNN and GRU train steps (Adam, one device) in float32 and bfloat16 (precision.apply_policy):
step time (median), examples/s, FLOPs per step from XLA's cost analysis (profiling.step_flops), achieved TFLOP/s
and MFU against profiling.peak_tflops (spec sheet on a known GPU/TPU; on a CPU a measured f32 matmul, stated as
such). Then checks: gradient accumulation k=4 == k=1 (SGD, one global batch), a training run with prefetch 2 ==
prefetch 0 (bit-identical params), 1 device == all devices (params after 3 steps of the GSPMD jit driver over a
``data`` mesh), and reports per-device params + Adam bytes under fsdp = all devices and the remat temp bytes
(bench/remat_memory.py). On CPU it runs on 4 fake devices. ``--quick``: tiny sizes, for CI
(tests/test_accelerator_bench.py). Prints a table, then one JSON line whose ``checks`` are booleans.
"""
from __future__ import annotations

import functools
import json
import tempfile

import jax

jax.config.update("jax_num_cpu_devices", 4)       # CPU only: before the backend starts

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from absl import app, flags  # noqa: E402

import remat_memory  # noqa: E402
import timing  # noqa: E402
from jaxml import models  # noqa: E402
from jaxml.tasks import toy  # noqa: E402, F401  (registers the blobs dataset)
from jaxml.train import config as config_lib  # noqa: E402
from jaxml.train import gspmd, objectives, precision, profiling, train_and_evaluate  # noqa: E402
from jaxml.train import step as step_lib  # noqa: E402
from jaxml.train.state import TrainState  # noqa: E402

QUICK = flags.DEFINE_bool("quick", False, "tiny sizes and few repeats (CPU CI)")
REPEATS = flags.DEFINE_integer("repeats", 5, "timed steps per model and dtype (median)")
XENT = objectives.get("softmax_xent")


def models_and_batches(quick: bool) -> dict:
    """{name: (model, x shape)} of the timed steps."""
    cnn_layers = (("conv:8:3", "act", "maxpool:2", "flatten", "dense:32", "act") if quick
                  else models.cnn.REPORT_DIGIT_CNN)
    return {"mlp": (models.get("mlp", input_shape=(784,), widths=(128, 128) if quick else (1024, 1024)),
                    (64 if quick else 1024, 784)),
            "cnn": (models.get("cnn", input_shape=(28, 28, 1), layers=cnn_layers), (32 if quick else 256, 28, 28, 1)),
            "gru": (models.get("gru", input_features=8, hidden=(32,) if quick else (256,), num_outputs=10),
                    (32 if quick else 256, 20 if quick else 100, 8))}


def make_state(model, opt, seed: int = 0) -> TrainState:
    params = model.init(jax.random.key(seed))
    return TrainState(jnp.zeros((), jnp.int32), params, model.init_state(), opt.init(params))


def batch_of(x_shape, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=x_shape).astype(np.float32), "y": rng.integers(0, 10, x_shape[0]).astype(np.int32)}


def jit_step(model, opt, accum_steps: int = 1):
    return jax.jit(functools.partial(step_lib.make_train_step(model, XENT, opt, accum_steps=accum_steps),
                                     hp=step_lib.Hparams(seed=0)))


def time_steps(quick: bool, repeats: int) -> dict:
    """{f"{model}_{dtype}": {step_time_s, examples_per_s, flops_per_step, tflops_per_s, mfu, peak_source}}."""
    out, opt = {}, optax.adam(1e-3)
    for name, (base, x_shape) in models_and_batches(quick).items():
        state, batch = make_state(base, opt), jax.device_put(batch_of(x_shape))
        for dtype in ("float32", "bfloat16"):
            step = jit_step(precision.apply_policy(base, dtype), opt)
            seconds = timing.median_seconds(lambda: jax.block_until_ready(step(state, batch)), repeats=repeats)
            flops = profiling.step_flops(step, state, batch)
            peak, source = profiling.peak_tflops(jax.devices()[0], dtype)
            achieved = None if flops is None else flops / seconds / 1e12
            out[f"{name}_{dtype}"] = {"step_time_s": seconds, "examples_per_s": x_shape[0] / seconds,
                                      "flops_per_step": flops, "tflops_per_s": achieved,
                                      "mfu": None if achieved is None else achieved / peak, "peak_source": source}
    return out


def max_rel_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))) / (np.max(np.abs(np.asarray(x))) + 1e-12))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def accumulation_check(quick: bool) -> float:
    """Max relative param difference, k=4 vs k=1, after one SGD step on one global batch of the MLP."""
    model, x_shape = models_and_batches(quick)["mlp"]
    opt = optax.sgd(0.1)
    batch = batch_of(x_shape)
    params = [jit_step(model, opt, k)(make_state(model, opt), batch)[0].params for k in (1, 4)]
    return max_rel_diff(*params)


def prefetch_check() -> bool:
    """A short blobs run with prefetch 2 gives bit-identical params to prefetch 0."""
    def run(depth, workdir):
        c = config_lib.base_config()
        c.model.name, c.model.widths = "mlp", (32,)
        c.data.name, c.data.batch_size, c.data.eval_batch_size = "blobs", 32, 64
        c.train.update({"num_steps": 6, "log_every": 3, "progress_bar": False, "prefetch": depth})
        return jax.tree.leaves(train_and_evaluate(c, workdir).state.params)

    with tempfile.TemporaryDirectory() as d:
        return all(np.array_equal(a, b) for a, b in zip(run(0, f"{d}/p0"), run(2, f"{d}/p2")))


def devices_check(quick: bool, steps: int = 3) -> tuple[float, float]:
    """(max relative param difference, 1 device vs the jit driver's ``data`` mesh over all devices, after
    ``steps`` Adam steps; per-device / total bytes of params + Adam state under fsdp = all devices)."""
    model, x_shape = models_and_batches(quick)["mlp"]
    opt, hp, n = optax.adam(1e-3), step_lib.Hparams(seed=0), jax.device_count()
    x_shape = (x_shape[0] * n,) + x_shape[1:]
    one, step = make_state(model, opt), jit_step(model, opt)
    driver = gspmd.JitDriver(model, XENT, opt, hp, mesh_axes={"data": n})
    many = driver.init(lambda: make_state(model, opt))
    for s in range(steps):
        batch = batch_of(x_shape, seed=s)
        one = step(one, batch)[0]
        many = driver.train_step(many, driver.put(batch))[0]
    fsdp = gspmd.JitDriver(model, XENT, opt, hp, mesh_axes={"fsdp": n}).init(lambda: make_state(model, opt))
    leaves = jax.tree.leaves((fsdp.params, fsdp.opt_state))
    share = sum(a.addressable_shards[0].data.nbytes for a in leaves) / sum(a.nbytes for a in leaves)
    return max_rel_diff(one.params, driver.fetch(many.params)), share


def main(_):
    quick = QUICK.value
    device = jax.devices()[0]
    timings = time_steps(quick, 2 if quick else REPEATS.value)
    accum = accumulation_check(quick)
    same_devices, fsdp_share = devices_check(quick)
    plain, remat = remat_memory.remat_pair("mlp", (64, 784), input_shape=(784,), widths=(256,) * (4 if quick else 16),
                                           batch_norm=True)
    checks = {"accum_k4_equals_k1": accum <= 1e-5, "prefetch_bit_identical": prefetch_check(),
              "all_devices_equal_one": same_devices <= 1e-5}
    print(f"backend {jax.default_backend()}, {jax.device_count()} x {device.device_kind}; "
          f"peak: {timings['mlp_float32']['peak_source']}")
    print(f"{'step':<18}{'ms/step':>10}{'examples/s':>14}{'GFLOP/step':>12}{'TFLOP/s':>10}{'MFU':>9}")
    for name, t in timings.items():
        flops = "-" if t["flops_per_step"] is None else f"{t['flops_per_step'] / 1e9:.3f}"
        tf = "-" if t["tflops_per_s"] is None else f"{t['tflops_per_s']:.3f}"
        mfu = "-" if t["mfu"] is None else f"{t['mfu']:.2%}"
        print(f"{name:<18}{t['step_time_s'] * 1e3:>10.2f}{t['examples_per_s']:>14.0f}{flops:>12}{tf:>10}{mfu:>9}")
    print(f"accum k=4 vs k=1: max rel diff {accum:.2e}; 1 vs {jax.device_count()} devices: {same_devices:.2e}; "
          f"fsdp={jax.device_count()} per-device share of params+Adam {fsdp_share:.3f}; "
          f"remat temp {plain / 2 ** 20:.2f} -> {remat / 2 ** 20:.2f} MiB")
    print(f"checks: {checks}")
    print(json.dumps({"bench": "accelerator", "backend": jax.default_backend(), "device_kind": device.device_kind,
                      "devices": jax.device_count(), "quick": quick, "steps": timings,
                      "accum_max_rel_diff": accum, "devices_max_rel_diff": same_devices,
                      "fsdp_per_device_share": fsdp_share, "remat_temp_bytes": {"plain": plain, "remat": remat},
                      "checks": checks}))


if __name__ == "__main__":
    app.run(main)
