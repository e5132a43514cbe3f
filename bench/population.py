"""16 MLPs that differ in learning rate and seed: one population (vmap and loop layouts) vs 16 sequential runs.

    flock /tmp/jaxml-bench.lock python bench/population.py [--quick] [--workloads=blobs,mnist] [--one_seed]

Two measurements per workload, both timing exactly the same training (same steps, same per-member
batches, since the seed also fixes the data order):
  * ``steps``: steady state, compiled. jaxml: ``--steps`` population steps through ``PopulationDriver``
    (``put`` + ``train_step``, with their host batch gathering) in the layout ``train_population`` picks by
    default (``choose_layout("auto")``: the ratio), and in the other layout (an extra row: ``vmap``, one vmapped
    call per step, or ``loop``, one jitted member step per member); peer: the same 16 x ``--steps`` single-model
    steps, one member after another, with the ordinary ``make_train_step`` under ``jax.jit`` (what
    ``train_and_evaluate`` runs), lr held in the optimizer state so one compiled step serves every member.
  * ``e2e``: what a sweep pays end to end — ``population.train_population`` on 16 configs vs 16 calls of
    ``train_and_evaluate`` (each builds its data, compiles its step, evaluates, writes metrics.jsonl,
    TensorBoard events and a final checkpoint; the population writes metrics.jsonl only). Each e2e run starts
    from an empty persistent compilation cache of the bench's own (unless ``JAXML_COMPILATION_CACHE`` is set), as
    a new sweep does: a sequential member loads the programs an earlier member compiled where they are the same,
    and compiles its own train step (its lr, and its seed, are constants of that program); the population
    compiles each of its programs once. Both layouts are run; the ratio is the default's.
Workloads: ``blobs`` = configs/blobs_mlp.py (MLP 8-32-16-4 with batch norm, SGD, batch 64, 3 epochs);
``mnist`` = configs/mnist_mlp.py:quick (the report's MLP 784-1024-BN-dropout-524-10, Adam, batch 128, a
2,048-image slice; needs $JAXML_DATA_DIR). Member i has seed i (its own init and batch order: stacked
batches); with ``--one_seed`` every member has seed 0 and only the lr differs, so the members share each batch.
Lower seconds are better; ratios are sequential / population.

The table also gives each workload's roofline: the FLOPs of one member's compiled step (XLA's cost analysis) x N,
the achieved GFLOP/s of both sides against the f32 matmul peak measured in the same run, and the ``ceiling``:
sequential steps / (N x step FLOPs / peak), the per-step ratio a population would reach running every FLOP at
the matmul peak with nothing else to do (an upper bound: the optimizer's passes over the N members' state are
memory traffic on top).
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from absl import logging as absl_logging

import timing
from jaxml import compile_cache, data
from jaxml.cli.common import load_config
from jaxml.train import objectives, train_and_evaluate
from jaxml.train import step as step_lib
from jaxml.train.loop import build_model
from jaxml.tune import population, space

flags.DEFINE_bool("quick", False, "A smoke run: 5 steps, 3 repeats, one end-to-end run, blobs only unless "
                  "--workloads is given.")
flags.DEFINE_list("workloads", ["blobs", "mnist"], "blobs and/or mnist (mnist needs $JAXML_DATA_DIR).")
flags.DEFINE_integer("members", 16, "Population size.")
flags.DEFINE_integer("steps", 20, "Steady-state steps per timed repeat.")
flags.DEFINE_integer("repeats", 5, "Timed repeats of the steady-state steps (median reported).")
flags.DEFINE_integer("e2e_repeats", 2, "Timed repeats of the end-to-end runs (median reported).")
flags.DEFINE_bool("one_seed", False, "Every member seed 0 (an lr sweep: members share each batch).")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def base_config(workload: str):
    c = load_config(os.path.join(ROOT, "configs", {"blobs": "blobs_mlp.py", "mnist": "mnist_mlp.py:quick"}[workload]))
    c.parallel.backend = "none"
    c.train.progress_bar = False
    c.train.checkpoint_every = 0
    c.reports = ()
    return c


def member_configs(base, n: int, *, one_seed: bool = False):
    """Member i: lr geometric in [lr/10, 10 lr] of the config's lr, seed i (0 for all with ``one_seed``)."""
    lrs = np.geomspace(base.optimizer.lr / 10, base.optimizer.lr * 10, n)
    return [space.apply_overrides(base, {"optimizer.lr": float(lr), "seed": 0 if one_seed else i})
            for i, lr in enumerate(lrs)]


def steady_state(configs, steps: int):
    """({layout: population_run}, sequential_run, member step FLOPs, the default layout): each run trains every
    member ``steps`` steps from its current state; the populations through ``PopulationDriver`` as the loop drives
    it (``put`` then ``train_step``), in the layout ``train_population`` picks by default and in the other one."""
    base, n = configs[0], len(configs)
    splits = data.build(base)
    model = build_model(base, splits.input_shape)
    objective = objectives.get(base.objective)
    opt = population.member_optimizer(base.optimizer, 10_000)
    zeros = jnp.zeros(n, jnp.float32)
    hp = population.PopulationHparams(jnp.asarray([c.optimizer.lr for c in configs], jnp.float32), zeros, zeros,
                                      jnp.asarray([c.seed for c in configs], jnp.int32))
    sources = population.train_sources(splits, configs)
    seeds = [int(c.seed) for c in configs]
    shared = len(sources) == 1

    default = population.choose_layout("auto", model, objective, opt, hp, sources[seeds[0]].batch(0))
    host = jax.device_get(population.init_population(model, opt, hp))
    clock = {"seq": 0}

    def pop_runner(layout):
        driver = population.PopulationDriver(model, objective, opt, hp, shared_batch=shared, layout=layout)
        box = [driver.from_saveable(jax.device_put(host))]
        clock[layout] = 0

        def run():
            s = box[0]
            for _ in range(steps):
                batch = population.population_batch(sources, seeds, clock[layout], stacked=layout == "vmap")
                s, _ = driver.train_step(s, driver.put(batch))
                clock[layout] += 1
            jax.block_until_ready(s)
            box[0] = s
        return run

    one_step = jax.jit(functools.partial(step_lib.make_train_step(model, objective, opt), hp=step_lib.Hparams(seed=0)),
                       donate_argnums=0)
    seq_box = [[jax.device_put(jax.tree.map(lambda a, i=i: a[i], host)) for i in range(n)]]
    example = jax.device_put(sources[seeds[0]].batch(0))
    flops = float(one_step.lower(seq_box[0][0], example).compile().cost_analysis().get("flops", 0.0))

    def seq_run():
        states = seq_box[0]
        t0 = clock["seq"]
        for i in range(n):
            s = states[i]
            for t in range(t0, t0 + steps):
                s, _ = one_step(s, jax.device_put(sources[seeds[i]].batch(t)))
            states[i] = s
        jax.block_until_ready(states)
        clock["seq"] += steps
    other = "vmap" if default == "loop" else "loop"
    return {default: pop_runner(default), other: pop_runner(other)}, seq_run, flops, default


def empty_compilation_cache(path: str) -> None:
    """Delete what earlier runs left in the bench's own cache directory (XLA's entries, jaxml's exported programs),
    so each end-to-end run starts as a new sweep does: nothing compiled yet."""
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry):
            shutil.rmtree(entry, ignore_errors=True)
        elif name.endswith(("-cache", "-atime")):
            os.remove(entry)


def end_to_end(configs, cache_dir: str | None, layout: str = "auto"):
    """(population_run, sequential_run) of the whole training of every member, fresh workdirs each time and, with
    ``cache_dir`` (the bench's own compilation cache), an empty cache: within a run the cache serves what a real
    sweep's cache would, nothing an earlier run (or bench) compiled. The population in ``layout``."""
    def pop_run():
        if cache_dir:
            empty_compilation_cache(cache_dir)
        root = tempfile.mkdtemp(prefix="bench_pop_")
        try:
            population.train_population(configs, [os.path.join(root, str(i)) for i in range(len(configs))],
                                        layout=layout)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def seq_run():
        if cache_dir:
            empty_compilation_cache(cache_dir)
        root = tempfile.mkdtemp(prefix="bench_seq_")
        try:
            for i, c in enumerate(configs):
                train_and_evaluate(c, os.path.join(root, str(i)))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return pop_run, seq_run


def run_workloads(workloads, steps: int, repeats: int, e2e_repeats: int, own_cache: str | None) -> None:
    """Time every workload and print the table and the JSON line."""
    results, ratios, table = {}, {}, []
    peak = timing.matmul_peak_gflops()
    for workload in workloads:
        if workload == "mnist" and not os.environ.get("JAXML_DATA_DIR"):
            print("mnist workload SKIPPED: JAXML_DATA_DIR unset (export JAXML_DATA_DIR=.../shared/data)")
            continue
        base = base_config(workload)
        configs = member_configs(base, FLAGS.members, one_seed=FLAGS.one_seed)
        n = len(configs)
        t0 = time.perf_counter()
        pops, seq_run, flops, default = steady_state(configs, steps)
        other = next(k for k in pops if k != default)
        med = timing.interleaved_medians({"pop": pops[default], "seq": seq_run, other: pops[other]},
                                         repeats=repeats, warmup=1)
        results[f"population_steps@{workload}"], results[f"sequential_steps@{workload}"] = med["pop"], med["seq"]
        results[f"population_{other}_steps@{workload}"] = med[other]
        ratios[f"jaxml/sequential_steps@{workload}"] = med["seq"] / med["pop"]
        ratios[f"jaxml_{other}/sequential_steps@{workload}"] = med["seq"] / med[other]
        work = n * steps * flops / 1e9                                          # GFLOP in either timed block
        ceiling = med["seq"] / (work / peak) if work else float("nan")
        results[f"ceiling_steps@{workload}"] = ceiling
        batching = f"{'shared' if FLAGS.one_seed else 'stacked'} batch"
        how = {"vmap": f"one vmapped call per step ({batching})", "loop": "one jitted member step per member"}
        table += [(f"population steps {workload}", med["pop"],
                   f"{n} members x {steps} steps, default layout {default}: {how[default]}; "
                   f"{work / med['pop']:.0f} GFLOP/s"),
                  (f"population {other} steps {workload}", med[other],
                   f"the same in layout {other}: {how[other]}; {work / med[other]:.0f} GFLOP/s"),
                  (f"sequential steps {workload}", med["seq"],
                   f"{n} x {steps} jitted single-model steps; {work / med['seq']:.0f} GFLOP/s"),
                  (f"ceiling steps {workload}", ceiling,
                   f"ratio at the {peak:.0f} GFLOP/s matmul peak: {flops / 1e6:.1f} MFLOP a member step")]
        print(f"[{workload} steps: {default} {med['pop']:.2f} s, {other} {med[other]:.2f} s, sequential "
              f"{med['seq']:.2f} s]", flush=True)
        pop_e2e, seq_e2e = end_to_end(configs, own_cache)
        other_e2e, _ = end_to_end(configs, own_cache, layout=other)
        med = timing.interleaved_medians({"pop": pop_e2e, "seq": seq_e2e, other: other_e2e}, repeats=e2e_repeats,
                                         warmup=0)
        total = int(base.train.num_steps) or int(base.train.num_epochs) * data.build(base).train.steps_per_epoch
        results[f"population_e2e@{workload}"], results[f"sequential_e2e@{workload}"] = med["pop"], med["seq"]
        results[f"population_{other}_e2e@{workload}"] = med[other]
        ratios[f"jaxml/sequential_e2e@{workload}"] = med["seq"] / med["pop"]
        ratios[f"jaxml_{other}/sequential_e2e@{workload}"] = med["seq"] / med[other]
        table += [(f"population e2e {workload}", med["pop"],
                   f"train_population (layout auto: {default}), {n} members x {total} steps + evals"),
                  (f"population {other} e2e {workload}", med[other], f"the same, layout {other}"),
                  (f"sequential e2e {workload}", med["seq"], f"{n} x train_and_evaluate (compile, data, ckpt each)")]
        print(f"[{workload}: {time.perf_counter() - t0:.0f} s]", flush=True)
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs; "
          f"steps: median of {repeats}, e2e: median of {e2e_repeats}; "
          f"seeds: {'one' if FLAGS.one_seed else 'one per member'}")
    timing.emit("population", "s", False, results, ratios, table)


def main(argv):
    del argv
    absl_logging.set_verbosity(absl_logging.WARNING)
    steps, repeats, e2e_repeats = FLAGS.steps, FLAGS.repeats, FLAGS.e2e_repeats
    workloads = FLAGS.workloads
    if FLAGS.quick:
        steps, repeats, e2e_repeats = 5, 3, 1
        workloads = workloads if FLAGS["workloads"].present else ["blobs"]
    own_cache = None
    if not os.environ.get(compile_cache.ENV):   # a cache of the bench's own, emptied before each e2e run
        own_cache = tempfile.mkdtemp(prefix="bench_population_cache_")
        os.environ[compile_cache.ENV] = own_cache
    try:
        run_workloads(workloads, steps, repeats, e2e_repeats, own_cache)
    finally:
        if own_cache:
            shutil.rmtree(own_cache, ignore_errors=True)

if __name__ == "__main__":
    app.run(main)
