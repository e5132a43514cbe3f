"""Test session set-up: 4 fake CPU devices before JAX first runs, and the data dir fixture."""
import os

import jax

# Must happen before any JAX computation: multi-device tests run on fake CPU devices.
jax.config.update("jax_num_cpu_devices", 4)
# Tests (and the launchers they start) write no persistent compilation cache into ~/.cache unless asked
# (JAXML_COMPILATION_CACHE=DIR pytest ...): a shared per-run cache did not measurably shorten the suite.
os.environ.setdefault("JAXML_COMPILATION_CACHE", "off")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def data_dir():
    """Root of the real datasets (``$JAXML_DATA_DIR``); skips loudly when unset."""
    path = os.environ.get("JAXML_DATA_DIR")
    if not path:
        pytest.skip("JAXML_DATA_DIR unset: real-data test SKIPPED (export JAXML_DATA_DIR=.../shared/data)")
    if not os.path.isdir(path):
        pytest.fail(f"JAXML_DATA_DIR={path!r} is not a directory")
    return path
