"""Profiling and utilisation: train records carry step time, XLA's FLOP count (checked against the MLP's
matmul count, and equal on 1 and 4 devices), TFLOP/s and MFU; profile_steps writes a trace; the peak table."""
import glob
import os
from types import SimpleNamespace

import jax
import pytest

from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset)
from jaxml.train import config as config_lib
from jaxml.train import profiling, train_and_evaluate
from jaxml.train.metrics_log import read_records
from tests import helpers

WIDTHS, FEATURES, CLASSES, BATCH = (64, 32), 8, 4, 64


def blobs_config(backend="none", **train):
    return helpers.blobs_config(model={"widths": WIDTHS}, data={"batch_size": BATCH, "eval_batch_size": 64},
                                parallel={"backend": backend}, **{"num_steps": 6, "log_every": 3, **train})


def train_records(workdir):
    return [r for r in read_records(workdir) if r["split"] == "train"]


def test_records_carry_flops_and_mfu_on_one_and_four_devices(tmp_path):
    """XLA's count of the step is the MLP's matmul FLOPs: 2 B d_in d_out forward, twice that backward (the first
    layer's input gradient is not needed, so 6 B per weight bounds it from above); 4 devices count the same total
    but for the Adam update each repeats on its replicated copy (~10 FLOPs x 2.7k params x 3 more devices)."""
    dims = (FEATURES, *WIDTHS, CLASSES)
    matmul = sum(2 * BATCH * a * b for a, b in zip(dims, dims[1:]))
    flops = {}
    for backend in ("none", "shard_map"):
        train_and_evaluate(blobs_config(backend), str(tmp_path / backend))
        recs = train_records(str(tmp_path / backend))
        assert [r["step"] for r in recs] == [3, 6]
        for r in recs:
            assert r["step_time_s"] > 0 and r["tflops_per_s"] > 0
            assert r["tflops_per_s"] == pytest.approx(r["flops_per_step"] / r["step_time_s"] / 1e12, rel=1e-6)
            assert r["mfu"] == pytest.approx(r["tflops_per_s"] / r["peak_tflops"], rel=1e-6)
        flops[backend] = recs[0]["flops_per_step"]
    assert 2.6 * matmul < flops["none"] < 3.3 * matmul
    params = sum(a * b + b for a, b in zip(dims, dims[1:]))
    assert 0 <= flops["shard_map"] - flops["none"] < 20 * params * 3


def test_profile_steps_write_a_trace(tmp_path):
    train_and_evaluate(blobs_config(profile_steps=(2, 4)), str(tmp_path))
    traces = glob.glob(os.path.join(tmp_path, "profile", "plugins", "profile", "*", "*.xplane.pb"))
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0
    jax.profiler.start_trace(str(tmp_path / "again"))      # the run's trace was stopped: a new one may start
    jax.profiler.stop_trace()


def test_an_early_end_stops_the_trace(tmp_path):
    """profile_steps past the end: the trace started at step 4 is stopped when the loop ends at 6."""
    train_and_evaluate(blobs_config(profile_steps=(4, 100)), str(tmp_path))
    assert glob.glob(os.path.join(tmp_path, "profile", "plugins", "profile", "*", "*.xplane.pb"))
    jax.profiler.start_trace(str(tmp_path / "again"))
    jax.profiler.stop_trace()


@pytest.mark.parametrize("kind,dtype,peak", [("NVIDIA H100 80GB HBM3", "bfloat16", 989.0),
                                             ("NVIDIA A100-SXM4-40GB", "float32", 19.5),
                                             ("TPU v5 lite", "bfloat16", 197.0)])
def test_known_accelerators_use_the_spec_table(kind, dtype, peak):
    got, source = profiling.peak_tflops(SimpleNamespace(device_kind=kind), dtype)
    assert got == peak and source.startswith("spec sheet")


def test_cpu_peak_is_measured_and_says_so():
    got, source = profiling.peak_tflops(jax.devices("cpu")[0], "bfloat16")
    assert got > 0 and "measured" in source and "not a spec" in source
    assert profiling.measured_matmul_tflops() == got                  # measured once, cached


@pytest.mark.parametrize("steps", [(5, 2), (1,), (-1, 3)])
def test_bad_profile_steps_are_config_errors(tmp_path, steps):
    with pytest.raises(config_lib.ConfigError, match=r"config\.train\.profile_steps must be"):
        train_and_evaluate(blobs_config(profile_steps=steps), str(tmp_path))
    assert not any(tmp_path.iterdir())
