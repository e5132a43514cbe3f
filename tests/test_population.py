"""Vmapped population training: the lr-in-state optimizer equals the config's optimizer, one vmapped
step of N members equals the N members stepped one by one with the ordinary train step, frozen members
stay put, and a whole population run reproduces train_and_evaluate per member."""
import functools
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxml.models import mlp
from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import objectives, optim
from jaxml.train import step as step_lib
from jaxml.train.state import TrainState, params_sha256
from jaxml.tune import population
from tests.helpers import blobs_config


def _opt_cfg(**kw):
    c = ml_collections.ConfigDict(config_lib.base_config().optimizer.to_dict())
    c.update(kw)
    return c


@pytest.mark.parametrize("name,extra", [(n, {}) for n in optim.OPTIMIZERS]
                         + [("adam", {"schedule": "warmup_cosine", "warmup_steps": 2, "grad_clip": 0.5}),
                            ("rmsprop", {"momentum": 0.5, "schedule": "exponential", "decay_steps": 2})])
@pytest.mark.slow
def test_member_optimizer_equals_config_optimizer(name, extra):
    """lr * update(lr=1) with lr in the optax state == the config's optimizer at lr (every optimizer is
    linear in its lr), over 4 steps with changing gradients."""
    cfg = _opt_cfg(name=name, lr=0.03, **extra)
    ref, mine = optim.make_optimizer(cfg, 10), population.member_optimizer(cfg, 10)
    rng = np.random.default_rng(0)
    p_ref = p_mine = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.zeros(2)}
    s_ref, s_mine = ref.init(p_ref), mine.init(p_mine)
    assert float(s_mine.hyperparams["learning_rate"]) == pytest.approx(0.03)
    for _ in range(4):
        g = {"w": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), "b": jnp.asarray(rng.normal(size=2), jnp.float32)}
        u_ref, s_ref = ref.update(g, s_ref, p_ref)
        u_mine, s_mine = mine.update(g, s_mine, p_mine)
        p_ref, p_mine = optax.apply_updates(p_ref, u_ref), optax.apply_updates(p_mine, u_mine)
    for a, b in zip(jax.tree.leaves(p_ref), jax.tree.leaves(p_mine)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_vmapped_population_step_equals_members_stepped_one_by_one():
    """2 members (different lr, l1, l2, seed -> init, dropout keys and batches) with batch norm and dropout:
    3 vmapped steps == 3 ordinary ``make_train_step`` steps per member, params and BN stats within 1e-5.
    (Momentum SGD: Adam would turn the float noise in the exactly-zero gradient of a bias feeding batch
    norm into full-size steps of either sign; Adam's lr handling is checked above.)"""
    model = mlp.make(input_shape=(5,), widths=(8,), num_outputs=3, batch_norm=True, dropout=0.25)
    objective = objectives.get("softmax_xent")
    cfg = _opt_cfg(name="momentum")
    lrs, l1s, l2s, seeds = [3e-2, 0.1], [0.0, 1e-3], [0.0, 1e-2], [0, 1]
    hp = population.PopulationHparams(jnp.asarray(lrs, jnp.float32), jnp.asarray(l1s, jnp.float32),
                                      jnp.asarray(l2s, jnp.float32), jnp.asarray(seeds, jnp.int32))
    opt = population.member_optimizer(cfg, 100)
    states = population.init_population(model, opt, hp)
    init = jax.device_get(states)                   # host copies: slicing them compiles nothing
    # (that member i starts from model.init(key(seed_i)) is checked end to end in test_sweep.py)
    step = population.make_population_step(model, objective, opt, shared_batch=False)
    rng = np.random.default_rng(0)
    batches = [{"x": rng.normal(size=(2, 16, 5)).astype(np.float32), "y": rng.integers(0, 3, (2, 16)).astype(np.int32)}
               for _ in range(3)]
    for b in batches:
        states, sums = step(states, hp, b, jnp.ones(2, bool))
    final, sums = jax.device_get((states, sums))

    for i in range(2):
        cfg_i = _opt_cfg(name="momentum", lr=lrs[i])
        ref_opt = optim.make_optimizer(cfg_i, 100)
        ref_step = jax.jit(functools.partial(step_lib.make_train_step(model, objective, ref_opt),
                                             hp=step_lib.Hparams(seeds[i], l1s[i] or None, l2s[i] or None)))
        params = jax.tree.map(lambda a: a[i], init.params)
        st = TrainState(np.int32(0), params, jax.tree.map(lambda a: a[i], init.model_state), ref_opt.init(params))
        for b in batches:
            st, ref_sums = ref_step(st, {k: v[i] for k, v in b.items()})
        st = jax.device_get(st)
        member = jax.tree.map(lambda a: a[i], (final.params, final.model_state))
        for a, r in zip(jax.tree.leaves(member), jax.tree.leaves((st.params, st.model_state))):
            np.testing.assert_allclose(a, r, atol=1e-5, rtol=1e-5)
        assert float(sums["objective"][i]) == pytest.approx(float(ref_sums["objective"]), rel=1e-5)
    assert final.step.tolist() == [3, 3]
    # lr lives in the optimizer state, one per member
    np.testing.assert_allclose(final.opt_state.hyperparams["learning_rate"], lrs, rtol=1e-7)

    # an inactive member keeps its state bit for bit; the others move
    after, _ = step(states, hp, batches[0], jnp.asarray([False, True]))
    after = jax.device_get(after)
    for a, b in zip(jax.tree.leaves(after.params), jax.tree.leaves(final.params)):
        np.testing.assert_array_equal(a[0], b[0])
        assert not np.array_equal(a[1], b[1])
    assert after.step.tolist() == [3, 4]


def test_population_fields_are_checked():
    c = config_lib.base_config()
    c.model.name, c.model.widths, c.data.name = "mlp", (4,), "blobs"
    other = ml_collections.ConfigDict(c.to_dict())
    other.optimizer.lr, other.seed = 0.5, 3                     # allowed
    population.check_population([c, other])
    other.model.widths = (8,)                                   # changes shapes: not allowed
    with pytest.raises(config_lib.ConfigError, match=r"member 1 differs from member 0 in \['model.widths'\]"):
        population.check_population([c, other])
    assert population.unsupported_fields(["optimizer.lr", "model.dropout", "seed", "model.widths", "model.layers"]) == [
        "model.widths", "model.layers"]


@pytest.mark.slow
def test_population_varies_dropout_rates_exactly():
    """Members differing only in dropout rates (and seed): the population model built from member 0 with
    hp.dropout == each member's own model (its own spec's rates) stepped alone; and rates of 0.0 vs 0.5
    really change the step (the override is used)."""
    rates = [(0.0, 0.1), (0.5, 0.3), (0.25, 0.0)]

    def spec(r):
        return ("flatten", "dense:8", "act", f"dropout:{r[0]}", "dense:6", "act", f"dropout:{r[1]}")

    models = [mlp.make(input_shape=(5,), layers=spec(r), num_outputs=3) for r in rates]
    objective = objectives.get("softmax_xent")
    cfg = _opt_cfg(name="sgd", lr=0.1)
    n = len(rates)
    hp = population.PopulationHparams(jnp.full((n,), 0.1), jnp.zeros((n,)), jnp.zeros((n,)),
                                      jnp.asarray([0, 1, 2], jnp.int32), jnp.asarray(rates, jnp.float32))
    opt = population.member_optimizer(cfg, 10)
    states = population.init_population(models[0], opt, hp)
    init = jax.device_get(states)
    step = population.make_population_step(models[0], objective, opt, shared_batch=True, use_l1=False, use_l2=False)
    rng = np.random.default_rng(0)
    batches = [{"x": rng.normal(size=(32, 5)).astype(np.float32), "y": rng.integers(0, 3, 32).astype(np.int32)}
               for _ in range(2)]
    for b in batches:
        states, _ = step(states, hp, b, jnp.ones(n, bool))
    final = jax.device_get(states)
    ref_opt = optim.make_optimizer(cfg, 10)
    for i in range(n):
        ref_step = jax.jit(functools.partial(step_lib.make_train_step(models[i], objective, ref_opt),
                                             hp=step_lib.Hparams(i)))
        params = jax.tree.map(lambda a: a[i], init.params)
        st = TrainState(np.int32(0), params, {}, ref_opt.init(params))
        for b in batches:
            st, _ = ref_step(st, b)
        for a, r in zip(jax.tree.leaves(jax.tree.map(lambda a: a[i], final.params)), jax.tree.leaves(st.params)):
            np.testing.assert_allclose(a, r, atol=1e-6, rtol=1e-6)
    # the same members with member 0's rates everywhere end elsewhere: the override is not a no-op
    same = hp._replace(dropout=jnp.asarray([rates[0]] * n, jnp.float32))
    states2 = population.init_population(models[0], opt, hp)
    for b in batches:
        states2, _ = step(states2, same, b, jnp.ones(n, bool))
    moved = jax.device_get(states2.params)
    assert not np.allclose(moved["dense_0"]["w"][1], final.params["dense_0"]["w"][1])


def test_population_configs_may_differ_in_dropout_rates_only():
    c = config_lib.base_config()
    c.model.name, c.model.widths, c.model.dropout, c.data.name = "mlp", (4,), 0.1, "blobs"
    other = ml_collections.ConfigDict(c.to_dict())
    other.model.dropout = 0.4                                   # a rate: allowed
    population.check_population([c, other])
    assert population.member_spec(other)[1] == (0.4,)
    other.model.dropout = 0.0                                   # removes the dropout layer: not allowed
    with pytest.raises(config_lib.ConfigError, match="dropout"):
        population.check_population([c, other])
    c.model.widths, other.model.widths = (), ()
    c.model.layers = ("flatten", "dense:4", "act", "dropout:0.1")
    other.model.layers = ("flatten", "dense:4", "act", "dropout:0.3")    # rates inside a layer spec: allowed
    other.model.dropout = 0.1
    population.check_population([c, other])
    other.model.layers = ("flatten", "dense:5", "act", "dropout:0.3")    # a width: not allowed
    with pytest.raises(config_lib.ConfigError, match="model.layers"):
        population.check_population([c, other])


def test_population_init_is_model_init_bit_for_bit():
    """init_population compiles the init at -O1 on CPU: member i's params are still exactly
    ``jax.jit(model.init)(key(seed_i))`` in XLA's default -O2 build (named, whatever XLA_FLAGS says), and the
    optimizer state holds lr_i."""
    model = mlp.make(input_shape=(7,), widths=(33, 9), num_outputs=4, batch_norm=True)
    seeds, lrs = [3, 0, 11], [0.1, 0.02, 0.5]
    hp = population.PopulationHparams(jnp.asarray(lrs, jnp.float32), jnp.zeros(3), jnp.zeros(3),
                                      jnp.asarray(seeds, jnp.int32))
    states = jax.device_get(population.init_population(model, population.member_optimizer(_opt_cfg(), 10), hp))
    init = jax.jit(model.init, compiler_options={"xla_backend_optimization_level": 2})
    for i, s in enumerate(seeds):
        ref = jax.device_get(init(jax.random.key(s)))
        for a, r in zip(jax.tree.leaves(jax.tree.map(lambda a, i=i: a[i], states.params)), jax.tree.leaves(ref)):
            np.testing.assert_array_equal(a, r)
    np.testing.assert_allclose(states.opt_state.hyperparams["learning_rate"], lrs, rtol=1e-7)
    assert states.step.tolist() == [0, 0, 0]


@pytest.mark.slow
def test_all_active_program_equals_the_freezing_program():
    """While every member is active the step runs a program without the freeze select; it gives what the
    freezing program gives with every member active (Adam, shared batch, one seed: an lr sweep)."""
    model = mlp.make(input_shape=(6,), widths=(16,), num_outputs=3)
    objective = objectives.get("softmax_xent")
    opt = population.member_optimizer(_opt_cfg(name="adam"), 100)
    hp = population.PopulationHparams(jnp.asarray([1e-3, 1e-2, 3e-2], jnp.float32), jnp.zeros(3), jnp.zeros(3),
                                      jnp.zeros(3, jnp.int32))
    step = population.make_population_step(model, objective, opt, shared_batch=True, use_l1=False, use_l2=False)
    rng = np.random.default_rng(1)
    batch = {"x": rng.normal(size=(24, 6)).astype(np.float32), "y": rng.integers(0, 3, 24).astype(np.int32)}
    fast, fast_sums = jax.device_get(step(population.init_population(model, opt, hp), hp, batch, np.ones(3, bool)))
    # the freezing program runs once a member is inactive: the same 3 members plus an inactive copy of member 0
    hp4 = jax.tree.map(lambda a: jnp.concatenate([a, a[:1]]), hp)
    slow, slow_sums = jax.device_get(step(population.init_population(model, opt, hp4), hp4, batch,
                                          np.asarray([True, True, True, False])))
    for a, b in zip(jax.tree.leaves(fast.params), jax.tree.leaves(slow.params)):
        np.testing.assert_allclose(a, b[:3], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fast_sums["objective"], slow_sums["objective"][:3], rtol=1e-6)
    init4 = jax.device_get(population.init_population(model, opt, hp4))
    for a, b in zip(jax.tree.leaves(slow.params), jax.tree.leaves(init4.params)):
        np.testing.assert_array_equal(a[3], b[3])                          # the inactive member did not move
    assert slow.step.tolist() == [1, 1, 1, 0] and fast.step.tolist() == [1, 1, 1]


def _three_members(**kw):
    model = mlp.make(input_shape=(5,), widths=(8,), num_outputs=3, batch_norm=True, dropout=0.25)
    hp = population.PopulationHparams(jnp.asarray([3e-2, 0.1, 0.05], jnp.float32),
                                      jnp.asarray([0.0, 1e-3, 0.0], jnp.float32),
                                      jnp.asarray([0.0, 1e-2, 1e-3], jnp.float32), jnp.asarray([0, 1, 0], jnp.int32))
    return model, objectives.get("softmax_xent"), population.member_optimizer(_opt_cfg(name="momentum"), 100), hp


def test_loop_layout_equals_the_vmapped_layout_and_each_member_alone():
    """The loop layout (member-major state, one jitted member step per member) and the vmapped layout: 3 members
    (lr, l1, l2, seed; members 0 and 2 share a seed, hence a batch), batch norm and dropout, 3 steps with every
    member active and one with member 1 frozen: equal params, BN stats, optimizer state and sums (1e-5), the
    frozen member unchanged bit for bit with zero sums in the loop, and the loop's member 1 bit-identical to
    member 1 stepped alone by the ordinary jitted train step with its lr, penalties and seed."""
    model, objective, opt, hp = _three_members()
    rng = np.random.default_rng(0)
    batches = [{"x": rng.normal(size=(3, 16, 5)).astype(np.float32), "y": rng.integers(0, 3, (3, 16)).astype(np.int32)}
               for _ in range(4)]
    for b in batches:
        b["x"][2], b["y"][2] = b["x"][0], b["y"][0]                # a batch is a function of (seed, step)
    actives = [np.ones(3, bool)] * 3 + [np.asarray([True, True, False])]
    vm = population.make_population_step(model, objective, opt, shared_batch=False)
    lp = population.make_member_loop_step(model, objective, opt, shared_batch=False)
    v_states, l_states = population.init_population(model, opt, hp), population.init_members(model, opt, hp)
    for b, active in zip(batches[:3], actives):
        v_states, _ = vm(v_states, hp, b, active)
        l_states, _ = lp(l_states, hp, b, active)
    before = jax.device_get(population.split_members(l_states)[2])
    v_states, v_sums = vm(v_states, hp, batches[3], actives[3])
    l_states, l_sums = lp(l_states, hp, batches[3], actives[3])
    v_host, l_members = jax.device_get(v_states), jax.device_get(population.split_members(l_states))
    for i, mine in enumerate(l_members):
        row = jax.tree.map(lambda a, i=i: a[i], v_host)
        for a, r in zip(jax.tree.leaves(mine), jax.tree.leaves(row)):
            np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(l_members[2]), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)
    assert [int(m.step) for m in l_members] == [4, 4, 3]
    l_sums, v_sums = jax.device_get((l_sums, v_sums))
    assert l_sums["n"].tolist() == [16.0, 16.0, 0.0]
    np.testing.assert_allclose(l_sums["objective"][:2], v_sums["objective"][:2], rtol=1e-5)

    # member 1 (lr 0.1, l1 1e-3, l2 1e-2, seed 1) alone: the ordinary train step, its hyperparameters constants
    ref = jax.jit(functools.partial(step_lib.make_train_step(model, objective, opt),
                                    hp=step_lib.Hparams(1, 1e-3, 1e-2)), donate_argnums=0)
    st = jax.device_put(population.split_members(jax.device_get(population.init_members(model, opt, hp)))[1])
    for b in batches:
        st, _ = ref(st, {k: v[1] for k, v in b.items()})
    for a, r in zip(jax.tree.leaves(l_members[1]), jax.tree.leaves(jax.device_get(st))):
        np.testing.assert_array_equal(a, r)


def test_loop_driver_state_layouts_and_eval():
    """The loop driver's first state is init_population's rows (bit for bit) in member-major form; to_saveable
    gives the stacked layout and from_saveable inverts it; its eval equals the vmapped eval; bad layouts are
    refused naming the choices."""
    model, objective, opt, hp = _three_members()
    loop_driver = population.PopulationDriver(model, objective, opt, hp, shared_batch=True, layout="loop")
    vmap_driver = population.PopulationDriver(model, objective, opt, hp, shared_batch=True)
    stacked, members = vmap_driver.init(), loop_driver.init()
    saved = loop_driver.to_saveable(members)
    assert params_sha256(saved) == params_sha256(jax.device_get(stacked))
    again = loop_driver.to_saveable(loop_driver.from_saveable(saved))
    assert params_sha256(again) == params_sha256(saved)
    host = jax.device_get(members)
    for i, m in enumerate(loop_driver.members(host)):
        for a, b in zip(jax.tree.leaves(m), jax.tree.leaves(vmap_driver.members(jax.device_get(stacked))[i])):
            np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(2)
    batch = {"x": rng.normal(size=(10, 5)).astype(np.float32), "y": rng.integers(0, 3, 10).astype(np.int32),
             "mask": np.asarray([1.0] * 7 + [0.0] * 3, np.float32)}
    mine = jax.device_get(loop_driver.eval_step(members.params, members.model_state, batch))
    ref = jax.device_get(vmap_driver.eval_step(stacked.params, stacked.model_state, batch))
    assert mine["n"].tolist() == [7.0, 7.0, 7.0]
    for k in ref:
        np.testing.assert_allclose(mine[k], ref[k], rtol=1e-6)
    with pytest.raises(config_lib.ConfigError, match=r"layout must be 'vmap' or 'loop'.*got 'auto'"):
        population.PopulationDriver(model, objective, opt, hp, shared_batch=True, layout="auto")
    with pytest.raises(config_lib.ConfigError, match=r"one of \['auto', 'vmap', 'loop'\], got 'grouped'"):
        population.choose_layout("grouped", model, objective, opt, hp, batch)


def test_auto_layout_loops_over_members_with_big_matmuls_on_cpu():
    """"auto" on CPU: the blobs-size MLP (a few kFLOPs a step) stays vmapped; the digit MLP 784-1024-524-10 at batch
    128 (one member step ~0.85 GFLOP) loops over its members."""
    objective = objectives.get("softmax_xent")
    opt = population.member_optimizer(_opt_cfg(name="adam"), 10)
    hp = population.PopulationHparams(jnp.asarray([1e-3, 1e-2]), jnp.zeros(2), jnp.zeros(2), jnp.asarray([0, 1]))
    small = mlp.make(input_shape=(8,), widths=(32, 16), num_outputs=4)
    big = mlp.make(input_shape=(784,), widths=(1024, 524), num_outputs=10)
    batch = {"x": np.zeros((2, 128, 784), np.float32), "y": np.zeros((2, 128), np.int32)}
    flops = population.member_step_flops(big, objective, opt, hp, {k: v[0] for k, v in batch.items()})
    # matmuls: 2 B K M forward and for dW per layer, 2 B K M more for dx of layers 2 and 3 (not of the input)
    dots = 4 * 128 * 784 * 1024 + 6 * 128 * (1024 * 524 + 524 * 10)
    assert dots == 827_156_480 and dots <= flops <= 1.05 * dots      # + Adam and the elementwise work
    assert population.choose_layout("auto", big, objective, opt, hp, {k: v[0] for k, v in batch.items()}) == "loop"
    small_batch = {"x": np.zeros((64, 8), np.float32), "y": np.zeros(64, np.int32)}
    assert population.choose_layout("auto", small, objective, opt, hp, small_batch) == "vmap"
    assert population.choose_layout("vmap", big, objective, opt, hp, small_batch) == "vmap"


@pytest.mark.slow
def test_train_population_in_the_loop_layout_writes_what_the_vmapped_layout_writes(tmp_path):
    """``train_population`` on blobs (2 members, lr 1e-9 seed 0 and lr 0.03 seed 1; eval every 8 steps, early
    stopping on the test loss: the tiny lr stops at the second evaluation, the other trains on frozen beside it)
    with layout "loop" and "vmap": the same records per member (steps, losses, accuracies within 1e-5); a bad
    layout is refused before any workdir is made."""
    base = blobs_config(data={"train_size": 512, "eval_batch_size": 128}, num_epochs=3, eval_every=8, log_every=8,
                        eval_splits=("test",), checkpoint_every=0)
    base.train.early_stopping.update(metric="loss", split="test", mode="min", patience=1, min_delta=1e-3)
    configs = [base.copy_and_resolve_references() for _ in range(2)]
    configs[0].optimizer.lr, configs[1].optimizer.lr, configs[1].seed = 1e-9, 0.03, 1
    with pytest.raises(config_lib.ConfigError, match=r"layout must be one of \['auto', 'vmap', 'loop'\], got 'vamp'"):
        population.train_population(configs, [str(tmp_path / "bad" / str(i)) for i in range(2)], layout="vamp")
    assert not os.path.exists(tmp_path / "bad")
    runs = {layout: population.train_population(configs, [str(tmp_path / layout / str(i)) for i in range(2)],
                                                layout=layout) for layout in ("loop", "vmap")}
    for i in range(2):
        def records(layout):
            with open(tmp_path / layout / str(i) / "metrics.jsonl") as f:
                return [json.loads(line) for line in f]
        mine, ref = records("loop"), records("vmap")
        assert [(r["step"], r["split"]) for r in mine] == [(r["step"], r["split"]) for r in ref] and len(mine) >= 5
        for a, b in zip(mine, ref):
            for k in ("loss", "accuracy"):
                if k in b:
                    assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), (i, a, b)
        assert runs["loop"][i].step == runs["vmap"][i].step
    assert runs["loop"][0].step == 16 < runs["loop"][1].step


def test_auto_layout_traces_the_loop_members_step_once(tmp_path, monkeypatch):
    """``layout="auto"`` counts the member step's FLOPs on the jitted step the loop layout then runs: the step is
    traced once per population (it was traced twice: once to count, once to run; a vmapped layout would trace it
    a second time too), and every member trains."""
    traces = []
    make = population._member_step

    def counting(*args, **kw):
        step = make(*args, **kw)

        def member_step(*a):
            traces.append(1)
            return step(*a)
        return member_step

    monkeypatch.setattr(population, "_member_step", counting)
    monkeypatch.setattr(population, "LOOP_MIN_FLOPS", 0.0)          # every step is "big": auto picks loop
    base = blobs_config(data={"train_size": 256, "eval_batch_size": 128}, num_epochs=1, log_every=2,
                        checkpoint_every=0)
    configs = [base.copy_and_resolve_references() for _ in range(2)]
    configs[1].optimizer.lr, configs[1].seed = 0.03, 1
    runs = population.train_population(configs, [str(tmp_path / str(i)) for i in range(2)])
    assert len(traces) == 1
    assert [r.step for r in runs] == [runs[0].step] * 2 and runs[0].step > 0
    assert runs[0].final["test"]["params_sha256"] != runs[1].final["test"]["params_sha256"]
