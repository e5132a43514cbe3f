"""The CPU layout (jaxml/layout.py): what ``auto`` picks, the field's validation, a layout run equal to the
one-device run, and the launcher's first line, workdir record and ``--num_cpu_devices`` override."""
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxml import data, layout
from jaxml.cli.common import load_config
from jaxml.tasks import toy  # noqa: F401  (registers the blobs and adding datasets)
from jaxml.train import config as config_lib
from jaxml.train import drivers, fit, loop, objectives, optim
from jaxml.train import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("name, cores, expected", [
    ("gru_adding", 2, 2), ("gru_adding", 4, 4), ("gru_adding", 1, 1),
    ("mnist_mlp", 2, 1), ("fashion_mlp", 2, 1), ("zhou_gender", 2, 1),
    ("mnist_cnn", 2, 1), ("clock", 2, 1),
])
def test_auto_gives_every_core_to_the_gru_and_one_device_to_the_others(name, cores, expected):
    config = load_config(os.path.join(ROOT, "configs", f"{name}.py"))
    assert config.parallel.cpu_devices == "auto"
    assert layout.resolve(config, cores=cores)[0] == expected


def test_auto_keeps_one_device_when_the_batch_does_not_split():
    config = load_config(os.path.join(ROOT, "configs", "gru_adding.py"))
    config.data.batch_size = 66                                  # 66 % 4 != 0
    assert layout.resolve(config, cores=4)[0] == 1
    config.data.batch_size = 24                                  # 24 / 2 = 12 rows < MIN_PER_DEVICE
    assert layout.resolve(config, cores=2)[0] == 1
    config.data.batch_size = 32
    assert layout.resolve(config, cores=2)[0] == 2


def test_the_flag_overrides_and_a_number_is_taken_as_given():
    config = load_config(os.path.join(ROOT, "configs", "gru_adding.py"))
    assert layout.resolve(config, cores=2, override=1) == (1, "--num_cpu_devices")
    config.parallel.cpu_devices = "4"                            # --config.parallel.cpu_devices=4 arrives as text
    assert layout.resolve(config, cores=2) == (4, "config")
    config.parallel.cpu_devices = 1
    assert layout.resolve(config, cores=2) == (1, "config")


def blobs_config(cpu_devices, model="mlp"):
    c = config_lib.base_config()
    c.model.name = model
    if model == "mlp":
        c.model.widths = (32, 16)
        c.model.batch_norm = True
        c.data.name = "blobs"
    else:                                                        # a small GRU on the adding problem
        c.objective, c.model.hidden, c.model.num_outputs, c.model.reset_after = "mse", (16,), 1, True
        c.data.name, c.data.length, c.data.eval_size = "adding", 6, 64
    c.data.batch_size = 32
    c.data.eval_batch_size = 32
    c.optimizer.name, c.optimizer.lr = "sgd", 0.05        # Adam would turn float32 noise in ~0 gradients into steps
    c.train.num_steps = 6
    c.train.log_every = 3
    c.train.progress_bar = False
    c.parallel.cpu_devices = cpu_devices
    return c


@pytest.mark.parametrize("bad", [0, -2, "two", 1.5, True, ""])
def test_a_bad_cpu_devices_fails_naming_the_field(bad):
    c = blobs_config(bad)
    with pytest.raises(config_lib.ConfigError, match=r"config\.parallel\.cpu_devices"):
        config_lib.validate(c)


def test_a_batch_that_does_not_divide_by_cpu_devices_fails_naming_both():
    c = blobs_config(3)
    with pytest.raises(config_lib.ConfigError, match=r"config\.data\.batch_size=32 .*config\.parallel\.cpu_devices=3"):
        config_lib.validate(c, num_devices=jax.device_count())


def test_more_cpu_devices_than_jax_started_with_fails_naming_the_fix():
    c = blobs_config(jax.device_count() * 2)
    c.data.batch_size = c.data.eval_batch_size = 64
    with pytest.raises(ValueError, match=rf"cpu_devices={2 * jax.device_count()} but JAX started with "
                                         rf"{jax.device_count()} .*use_cpu_layout"):
        layout.layout_devices(c)


def test_none_over_two_cpu_devices_is_data_parallel_and_equals_one_device():
    assert jax.device_count() == 4                               # tests/conftest.py: the first 2 are used
    two, one = blobs_config(2, "gru"), blobs_config(1, "gru")    # what auto gives the GRU on 2 cores
    model = loop.build_model(two, data.build(two).input_shape)
    driver = drivers.make(two, model, objectives.get(two.objective), optim.make_optimizer(two.optimizer, 6))
    assert isinstance(driver, drivers.ShardMapDriver) and driver.mesh.devices.size == 2
    assert layout.run_devices(two) == 2 and layout.driver_backend(two) == "shard_map"
    assert "data-parallel over 2 CPU devices" in layout.describe(two)
    assert layout.layout_devices(one) is None and layout.driver_backend(one) == "none"
    a, b = fit(two), fit(one)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.params, b.params)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.model_state, b.model_state)
    assert a.final["eval"]["loss"] == pytest.approx(b.final["eval"]["loss"], rel=1e-5)


def test_on_an_accelerator_the_field_does_nothing(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    c = blobs_config(2)
    assert layout.layout_devices(c) is None and layout.run_devices(c) == 1
    assert layout.describe(c).startswith("layout: gpu")


def _train(workdir, *extra):
    cmd = [sys.executable, os.path.join(ROOT, "launch", "train.py"), "--config=configs/gru_adding.py:quick",
           f"--workdir={workdir}", "--config.data.length=5", "--config.model.hidden=(8,)",
           "--config.data.eval_size=64", "--config.data.eval_batch_size=64", "--config.train.progress_bar=false",
           "--config.reports=()", "--config.train.num_steps=6", *extra]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NPROC="2"))         # auto reads NPROC: 2 cores on any machine
    assert r.returncode == 0, r.stderr[-2000:]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    with open(os.path.join(workdir, "config.json")) as f:
        stored = json.load(f)
    return r.stderr.splitlines()[0], records, stored


def test_a_resume_may_change_cpu_devices_without_allow_config_change(tmp_path):
    c = blobs_config(2)
    workdir_lib.check_config(str(tmp_path), c)                   # the first run stores its layout
    os.makedirs(tmp_path / "checkpoints" / "4")                  # ... and has a checkpoint to resume
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["parallel"]["cpu_devices"] == 2
    workdir_lib.check_config(str(tmp_path), blobs_config(1))     # another layout: resumes, nothing refused
    older = blobs_config(2)
    del older.parallel["cpu_devices"]                            # a workdir written before the field existed
    with open(tmp_path / "config.json", "w") as f:
        f.write(older.to_json_best_effort(sort_keys=True))
    workdir_lib.check_config(str(tmp_path), blobs_config(2))
    c.optimizer.lr = 0.5                                         # what a run trains still needs naming
    with pytest.raises(config_lib.ConfigError, match="allow_config_change=optimizer.lr"):
        workdir_lib.check_config(str(tmp_path), c)


@pytest.mark.slow
def test_launcher_prints_and_stores_the_layout_and_the_flag_overrides_it(tmp_path):
    line, records, stored = _train(tmp_path / "auto")
    assert "layout: data-parallel over 2 CPU devices (shard_map); config.parallel.cpu_devices=2 (auto: gru" in line
    assert stored["parallel"]["cpu_devices"] == 2 and stored["parallel"]["backend"] == "none"
    line1, alone, stored1 = _train(tmp_path / "one", "--num_cpu_devices=1")
    assert "layout: backend none, one device; config.parallel.cpu_devices=1 (--num_cpu_devices)" in line1
    assert stored1["parallel"]["cpu_devices"] == 1
    final = {r["split"]: r for r in records if r["step"] == 6}
    assert final["eval"]["loss"] == pytest.approx({r["split"]: r for r in alone if r["step"] == 6}["eval"]["loss"],
                                                  rel=1e-4)


def test_the_private_jax_query_layout_relies_on_is_where_it_expects():
    """``layout.started`` asks ``jax._src.xla_bridge.backends_are_initialized``; when JAX moves it, an ``auto``
    layout resolved after JAX started would no longer be noticed, so this fails first."""
    jax.devices()
    assert layout._backends_are_initialized is not None and layout.started()
