"""Test session set-up: 4 fake CPU devices before JAX first runs, one compilation cache per test run, and the data
dir fixture.

The cache: JAX's persistent compilation cache in a fresh temporary directory for the whole run, shared by the xdist
workers and every process a test starts (through ``JAX_COMPILATION_CACHE_DIR``), removed when the run ends. A
program is still compiled once per run, but not again by each of the tests, closures and processes that build the
same one (the suite spends most of its time in XLA:CPU compiles). jaxml's own cache stays off
(``JAXML_COMPILATION_CACHE=off``: no settings, no exported programs, nothing under ~/.cache); tests of the cache
itself start their processes without these variables. ``JAXML_TEST_JAX_CACHE=off`` runs the suite without it.
"""
import atexit
import importlib.util
import os
import shutil
import tempfile

os.environ.setdefault("JAXML_COMPILATION_CACHE", "off")
_CACHE_ENV = "JAXML_TEST_JAX_CACHE"          # set by the first (controller) process; its workers inherit it
if os.environ.get(_CACHE_ENV, "").lower() != "off":
    if not os.environ.get(_CACHE_ENV):
        os.environ[_CACHE_ENV] = tempfile.mkdtemp(prefix="jaxml-test-jax-cache-")
        atexit.register(shutil.rmtree, os.environ[_CACHE_ENV], ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=os.environ[_CACHE_ENV],
                      # the many tiny programs stay out (0.02 s took the same CPU time on the launcher tests)
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.25",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    if importlib.util.find_spec("filelock"):   # torch's dependency; JAX refuses a size limit without it
        # a size limit turns on JAX's file lock: a worker never reads an entry another is writing
        os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(8 << 30)

import jax  # noqa: E402  (after the cache's environment variables, which JAX reads at import)

# Must happen before any JAX computation: multi-device tests run on fake CPU devices.
jax.config.update("jax_num_cpu_devices", 4)

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


# The files that take longest (--durations, summed per file, 2 cores), longest first. `--dist loadfile` hands each
# worker whole files in collection order, so these go first and the run ends on short files, not with one worker
# idle while the other finishes a long one. The order changes only the wall time, never what runs.
LONGEST_FIRST = ("test_notebooks", "test_models_devices", "test_kmeans_bounds", "test_cluster", "test_nbsvm",
                 "test_clock_task", "test_remat", "test_preemption", "test_dropout_layout", "test_kmeans",
                 "test_models_reference", "test_gru", "test_custom_vjp_shard_map", "test_conv_speed_paths")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))     # stable: same order within a file
