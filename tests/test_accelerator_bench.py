"""bench/accelerator.py --quick runs on CPU (4 fake devices) and its JSON line's checks hold: accumulation k=4 ==
k=1, prefetch bit-identical, 1 device == all devices; every timed step has a FLOP count and an MFU, fsdp over 4
devices keeps about a quarter of params + Adam state per device."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_accelerator_bench_quick_checks_hold():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "bench")]),
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "accelerator.py"), "--quick"], env=env,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bench"] == "accelerator" and result["devices"] == 4
    assert result["checks"] == {"accum_k4_equals_k1": True, "prefetch_bit_identical": True,
                                "all_devices_equal_one": True}
    assert set(result["steps"]) == {f"{m}_{d}" for m in ("mlp", "cnn", "gru") for d in ("float32", "bfloat16")}
    for step in result["steps"].values():
        assert step["flops_per_step"] > 0 and step["mfu"] > 0 and "not a spec" in step["peak_source"]
    assert 0.25 <= result["fsdp_per_device_share"] < 0.3        # small leaves (biases) stay replicated
