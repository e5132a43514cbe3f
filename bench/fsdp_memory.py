"""Per-device bytes of params + Adam state under the jit driver's fsdp sharding, on fake CPU devices.

    python bench/fsdp_memory.py [--devices=8] [--widths=1024,1024]

Builds the MLP 784-widths-10 train state with ``gspmd.JitDriver`` for meshes data=N, data=N/2 x fsdp=2, ...,
fsdp=N and prints the bytes of params + optimizer state on device 0 (from the arrays' shards) against the
replicated (data=N) layout: the ratio approaches the fsdp factor (leaves under 1024 elements stay replicated).
Then one JSON line. Memory, not time: the figures do not depend on the machine's load.
"""
from __future__ import annotations

from absl import app, flags

DEVICES = flags.DEFINE_integer("devices", 8, "fake CPU devices")
WIDTHS = flags.DEFINE_list("widths", ["1024", "1024"], "MLP hidden widths")


def main(_):
    # imported here: the fake device count must be set before anything (jaxml's imports too) starts JAX's backend
    import jax
    jax.config.update("jax_num_cpu_devices", DEVICES.value)
    import optax

    import timing
    from jaxml import models
    from jaxml.train import gspmd, objectives
    from jaxml.train import step as step_lib
    from jaxml.train.state import TrainState

    n = jax.device_count()
    model = models.get("mlp", input_shape=(784,), widths=tuple(int(w) for w in WIDTHS.value), num_outputs=10)
    opt = optax.adam(1e-3)

    def make_state():
        params = model.init(jax.random.key(0))
        return TrainState(jax.numpy.zeros((), jax.numpy.int32), params, model.init_state(), opt.init(params))

    results, table = {}, []
    fsdp = 1
    while fsdp <= n:
        driver = gspmd.JitDriver(model, objectives.get("softmax_xent"), opt, step_lib.Hparams(seed=0),
                                 mesh_axes={"data": n // fsdp, "fsdp": fsdp})
        state = driver.init(make_state)
        leaves = jax.tree.leaves((state.params, state.opt_state))
        per_device = sum(a.addressable_shards[0].data.nbytes for a in leaves)
        results[f"fsdp{fsdp}"] = per_device / 2 ** 20
        table.append((f"data{n // fsdp}_fsdp{fsdp}", per_device / 2 ** 20,
                      f"total {sum(a.nbytes for a in leaves) / 2 ** 20:.2f} MiB"))
        fsdp *= 2
    ratios = {f"fsdp1/{k}": results["fsdp1"] / v for k, v in results.items() if k != "fsdp1"}
    timing.emit("fsdp_memory", "MiB/device", False, results, ratios, table)


if __name__ == "__main__":
    app.run(main)
