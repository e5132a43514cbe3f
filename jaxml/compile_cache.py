"""Compiling once: JAX's persistent compilation cache, switched on for jaxml's launchers and interactive entry
points, and the shape buckets that let nearby data sizes share one compiled program.

A compiled XLA program is written to disk and read back by the next process that lowers the same program
(same computation, shapes, devices, compile options, jax/jaxlib version), so a repeated command skips XLA
compilation — most of a short job's wall time on a CPU. ``enable()`` is called by ``jaxml.cli.common.setup``
(every launcher) and at the top of ``jaxml.train.fit`` / ``train_and_evaluate``, ``jaxml.kmeans.kmeans`` /
``kmeans_auto_k`` / ``init_centers`` and the naive Bayes text fits, before their first compile; it is idempotent
and cheap after the first call.

Where (``JAXML_COMPILATION_CACHE``):
    unset            ``$XDG_CACHE_HOME/jaxml/jax``, or ``~/.cache/jaxml/jax`` without XDG_CACHE_HOME
    a path           that directory (created, mode 0700)
    off | 0 | false | no | none    no cache
A user who configured JAX's cache (``JAX_COMPILATION_CACHE_DIR`` / ``jax.config.update(
"jax_compilation_cache_dir", ...)``, or ``jax_enable_compilation_cache=False``) is left alone: jaxml then
changes no JAX setting. A directory that cannot be created leaves the cache off (a warning says why).

Settings jaxml applies with its directory (each unless its ``JAX_...`` environment variable is set):
    jax_persistent_cache_min_compile_time_secs = MIN_COMPILE_TIME_S  (JAX's default, 1 s, skips the many
        small programs of a short job, which add up to seconds on a CPU)
    jax_persistent_cache_min_entry_size_bytes  = -1  (no size floor)
    jax_compilation_cache_max_size = MAX_SIZE_BYTES when ``filelock`` is importable: JAX then evicts least
        recently used entries and takes a file lock around every read and write, so processes sharing the
        directory never read an entry another is still writing. (Without the lock a torn entry fails to
        deserialize, JAX warns and compiles afresh: slower, never wrong.) Only process 0 of a multi-process
        run writes entries (JAX's rule); every process reads.

Buckets (``bucket(n)``): K-means pads its rows and naive Bayes its token and document streams (weight 0 / masked)
up to max(n, BUCKET_FLOOR) rounded up to a multiple of 2^floor(log2 n) / BUCKETS_PER_OCTAVE, so one more row or
document reuses the compiled program; above the floor the padding is at most 1/16 of the work.

The cache directory holds executable code: keep it private (jaxml creates it 0700; do not point it at a
directory others can write).
"""
from __future__ import annotations

import importlib.util
import os
import warnings

import jax

ENV = "JAXML_COMPILATION_CACHE"
OFF = ("off", "0", "false", "no", "none")
MIN_COMPILE_TIME_S = 0.0
MAX_SIZE_BYTES = 4 << 30

BUCKET_FLOOR = 1024
BUCKETS_PER_OCTAVE = 16

_state: dict = {}   # {"dir": path | None, "why": reason} once enable() has decided


def default_dir() -> str:
    """``$XDG_CACHE_HOME/jaxml/jax``, else ``~/.cache/jaxml/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxml", "jax")


def requested_dir() -> str | None:
    """The directory ``JAXML_COMPILATION_CACHE`` asks for (None: off)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    return os.path.abspath(os.path.expanduser(value)) if value else default_dir()


def _user_configured() -> bool:
    return jax.config.jax_compilation_cache_dir is not None or not jax.config.jax_enable_compilation_cache


def _set_unless_env(name: str, value) -> None:
    if name.upper() not in os.environ:
        jax.config.update(name, value)


def enable() -> str | None:
    """Switch the cache on as the module docstring says (first call decides; later calls return the same).

    Returns the directory in use (JAX's own when the user configured it), or None when the cache is off."""
    if "dir" in _state:
        return _state["dir"]
    if _user_configured():
        _state.update(dir=jax.config.jax_compilation_cache_dir, why="configured by the user")
        return _state["dir"]
    path = requested_dir()
    if path is None:
        _state.update(dir=None, why=f"{ENV}={os.environ.get(ENV)}")
        return None
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{path} is not writable")
    except OSError as e:
        warnings.warn(f"jaxml: persistent compilation cache off: cannot use {path!r} ({e}); set {ENV}=DIR or "
                      f"{ENV}=off", RuntimeWarning, stacklevel=2)
        _state.update(dir=None, why=str(e))
        return None
    _set_unless_env("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    _set_unless_env("jax_persistent_cache_min_entry_size_bytes", -1)
    if importlib.util.find_spec("filelock") is not None:   # JAX's LRU eviction and its file lock need it
        _set_unless_env("jax_compilation_cache_max_size", MAX_SIZE_BYTES)
    jax.config.update("jax_compilation_cache_dir", path)
    _state.update(dir=path, why=f"{ENV}" if os.environ.get(ENV) else "default")
    return path


def status() -> dict:
    """{"dir": path or None, "why": how it was decided} (empty before the first ``enable()``)."""
    return dict(_state)


def bucket(n: int, multiple: int = 1, floor: int = BUCKET_FLOOR) -> int:
    """The padded size a program for n items is compiled for: max(n, floor) rounded up to a multiple of
    2^floor(log2 max(n, floor)) / BUCKETS_PER_OCTAVE, then to a multiple of ``multiple`` (a device count).
    1000 -> 1024, 1025 -> 1088, 26_600 -> 26_624, 1_000_000 -> 1_015_808."""
    m = max(int(n), int(floor), 1)
    step = max(1, (1 << (m.bit_length() - 1)) // BUCKETS_PER_OCTAVE)
    size = -(-m // step) * step
    return -(-size // multiple) * multiple
