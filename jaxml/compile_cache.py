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
        deserialize, JAX warns and compiles afresh: slower, never wrong.) ``enable()`` also deletes any entry
        a killed process left half-written (``repair``), which would otherwise stop every later write. Only
        process 0 of a multi-process run writes entries (JAX's rule); every process reads.

Buckets (``bucket(n)``): K-means pads its rows and naive Bayes its token and document streams (weight 0 / masked)
up to max(n, BUCKET_FLOOR) rounded up to a multiple of 2^floor(log2 n) / BUCKETS_PER_OCTAVE, so one more row or
document reuses the compiled program; above the floor the padding is at most 1/16 of the work.

The cache directory holds executable code: keep it private (jaxml creates it 0700; do not point it at a
directory others can write).
"""
from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
import tempfile
import threading
import warnings

import jax
import jaxlib
from jax._src.export import _export as jax_export_impl  # private: see _without_lapack_setup

try:
    import filelock  # JAX's LRU eviction and its file lock need it
except ImportError:
    filelock = None

ENV = "JAXML_COMPILATION_CACHE"
OFF = ("off", "0", "false", "no", "none")
MIN_COMPILE_TIME_S = 0.0
MAX_SIZE_BYTES = 4 << 30

LOCK_TIMEOUT_S = 10.0
_CACHE_SUFFIX, _ATIME_SUFFIX = "-cache", "-atime"   # JAX's file names: KEY-cache (the program), KEY-atime

EXPORTED_SUBDIR = "jaxml-exported"   # traced + lowered programs (jax.export), beside XLA's compiled ones
MAX_EXPORTED = 256                   # files kept there, most recently used first
_CONFIG_KEYS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
                "jax_numpy_dtype_promotion", "jax_default_prng_impl", "jax_threefry_partitionable")
_exported_stats = {"exported": 0, "loaded": 0}

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
    if filelock is not None:
        _set_unless_env("jax_compilation_cache_max_size", MAX_SIZE_BYTES)
        repair(path)
    jax.config.update("jax_compilation_cache_dir", path)
    _state.update(dir=path, why=f"{ENV}" if os.environ.get(ENV) else "default")
    return path


def repair(path: str) -> list[str]:
    """Delete the entries a killed process left without their access-time file; returns their names.

    JAX writes an entry as ``KEY-cache`` then ``KEY-atime``. A process killed in between (Ctrl-C, a timeout)
    leaves a ``-cache`` file that may be torn and has no ``-atime``; JAX's eviction reads every entry's atime
    before each write, so from then on no process can add an entry to the directory (each compile warns
    "Error writing persistent compilation cache entry" and is lost). Runs under JAX's own lock file, so an
    entry another process is writing is never touched; if the lock is busy for LOCK_TIMEOUT_S it does nothing."""
    removed = []
    try:
        with filelock.FileLock(os.path.join(path, ".lockfile"), timeout=LOCK_TIMEOUT_S):
            for entry in glob.glob(os.path.join(glob.escape(path), "*" + _CACHE_SUFFIX)):
                if not os.path.exists(entry[:-len(_CACHE_SUFFIX)] + _ATIME_SUFFIX):
                    os.remove(entry)
                    removed.append(os.path.basename(entry))
    except (filelock.Timeout, OSError) as e:
        warnings.warn(f"jaxml: compilation cache {path!r} not checked for torn entries ({e})", RuntimeWarning,
                      stacklevel=3)
    return removed


def jit_once(name: str, fun, *, static_key: str = "", compiler_options: dict | None = None, mesh=None):
    """``jax.jit(fun, compiler_options=...)`` that a later process runs without tracing or lowering it again.

    The persistent cache skips only XLA's compile; on a CPU, tracing and lowering a K-means fit are then much
    of a repeated command's time (``bench/cold_start.py``). So, with the cache on, the first call for each
    argument signature exports the traced program (``jax.export``: StableHLO, input/output trees and shardings) to
    ``<cache dir>/jaxml-exported/`` and runs it through ``Exported.call``; a later process finds the file,
    deserializes it and runs the same module, which XLA's cache then has compiled. Same module, same XLA
    program: results are bit for bit those of ``jax.jit(fun)``.

    The file name hashes ``name``, ``static_key`` (everything ``fun`` closes over that shapes its trace:
    the caller must pass it), the arguments' tree, shapes, dtypes and shardings, the compiler options,
    the jax/jaxlib versions, the JAX settings that change a trace, and every source file of the jaxml
    package — editing jaxml retraces. A ``fun`` that cannot be exported (host callbacks, ordered effects)
    runs as plain ``jax.jit`` with a warning; so does every call with the cache off or in a multi-process
    run. A file that fails to load is deleted and re-exported.
    ``mesh``: the devices a program over several devices runs on (``fun``'s shard_map mesh); a loaded
    program is called under ``jax.set_mesh(mesh)``, which gives its call that many devices.
    """
    jitted = jax.jit(fun, compiler_options=compiler_options)
    programs: dict = {}

    def call(*args):
        root = enable()
        if root is None or jax.process_count() > 1:   # a cluster: every process traces (JAX's cache still works)
            return jitted(*args)
        leaves, tree = jax.tree.flatten(args)
        signature = (str(tree),) + tuple(_leaf_signature(x) for x in leaves)
        program = programs.get(signature)
        if program is None:
            digest = hashlib.sha256(repr((name, static_key, signature, sorted((compiler_options or {}).items()),
                                          _environment_digest())).encode()).hexdigest()[:40]
            path = os.path.join(root, EXPORTED_SUBDIR, f"{name.replace('/', '_')}-{digest}.jaxexport")
            exported = _exported(path, jitted, args)
            if exported is None:
                program = programs[signature] = jitted
            else:
                program = programs[signature] = jax.jit(exported.call, compiler_options=compiler_options)
                with _without_lapack_setup(exported), (contextlib.nullcontext() if mesh is None
                                                       else jax.set_mesh(mesh)):
                    return program(*args)   # the first call lowers and compiles it
        if mesh is None or program is jitted:
            return program(*args)
        with jax.set_mesh(mesh):
            return program(*args)

    call.jitted = jitted
    return call


def exported_stats() -> dict:
    """{"exported": programs traced and written, "loaded": programs read back} in this process."""
    return dict(_exported_stats)


def _leaf_signature(x) -> tuple:
    sharding = getattr(x, "sharding", None)
    return (tuple(getattr(x, "shape", ())), str(getattr(x, "dtype", type(x).__name__)),
            bool(getattr(x, "weak_type", False)), None if sharding is None else repr(sharding))


@functools.cache
def _environment_digest() -> str:
    """What else changes a trace: versions, trace-relevant JAX settings, jaxml's own source."""
    h = hashlib.sha256(repr((jax.__version__, jaxlib.__version__,
                             [(k, str(getattr(jax.config, k, None))) for k in _CONFIG_KEYS])).encode())
    package = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
        h.update(os.path.relpath(path, package).encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def _exported(path: str, jitted, args):
    """The Exported program at ``path``, or ``jitted`` exported for ``args`` and written there (None: it cannot
    be exported)."""
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                program = jax.export.deserialize(bytearray(f.read()))
            os.utime(path)            # most recently used
            _exported_stats["loaded"] += 1
            return program
        except Exception as e:        # torn or foreign file: drop it and export afresh
            warnings.warn(f"jaxml: exported program {path!r} unreadable ({type(e).__name__}: {e}); re-exporting",
                          RuntimeWarning, stacklevel=3)
            _remove(path)
    try:
        program = jax.export.export(jitted)(*args)
    except Exception as e:            # not exportable (a host callback, ...): run it as plain jit, which re-raises
        warnings.warn(f"jaxml: {os.path.basename(path)} not exported ({type(e).__name__}: {e}); tracing it "
                      "in every process", RuntimeWarning, stacklevel=3)  # a genuine error in the function
        return None
    _exported_stats["exported"] += 1
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
            f.write(program.serialize())
        os.replace(f.name, path)      # atomic: a reader sees the whole file or none
        _evict(folder)
    except OSError as e:
        warnings.warn(f"jaxml: could not store exported program {path!r} ({e})", RuntimeWarning, stacklevel=3)
    return program


_lapack_lock = threading.Lock()


@contextlib.contextmanager
def _without_lapack_setup(exported):
    """Lower ``exported.call`` without JAX's LAPACK set-up when the module calls no LAPACK kernel.

    On a CPU, lowering any ``Exported.call`` first registers jaxlib's LAPACK kernels, which imports scipy.linalg:
    ~0.15 s of every launcher run that calls a jaxml program (its lowering 0.16 -> 0.02 s), for kernels only a
    module with a ``lapack_*`` custom call uses. That hook is private to JAX: if it moves, nothing is skipped.
    A program lowered normally (``jnp.linalg`` ...) still sets LAPACK up itself.
    """
    ensure = getattr(jax_export_impl, "_ensure_backends_initialized", None)
    if ensure is None or b"lapack" in exported.mlir_module_serialized:
        yield
        return
    with _lapack_lock:
        jax_export_impl._ensure_backends_initialized = lambda platforms: None
        try:
            yield
        finally:
            jax_export_impl._ensure_backends_initialized = ensure


def _evict(folder: str) -> None:
    entries = glob.glob(os.path.join(glob.escape(folder), "*.jaxexport"))
    if len(entries) > MAX_EXPORTED:
        entries.sort(key=lambda p: os.stat(p).st_mtime if os.path.exists(p) else 0.0)
        for path in entries[:len(entries) - MAX_EXPORTED]:
            _remove(path)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


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
