"""JAX's persistent compilation cache, switched on for jaxml's launchers and interactive entry points.

A compiled XLA program is written to disk and read back by the next process that lowers the same program
(same computation, shapes, devices, compile options, jax/jaxlib version), so a repeated command skips XLA
compilation, most of a short job's wall time on a CPU. ``enable()`` is called by every launcher
(``jaxml.cli.common.setup``) and by the library entry points (``fit``, ``train_and_evaluate``, ``kmeans``, the
naive Bayes fits) before their first compile; it is idempotent.

Where (``JAXML_COMPILATION_CACHE``):
    unset            ``$XDG_CACHE_HOME/jaxml/jax``, or ``~/.cache/jaxml/jax`` without XDG_CACHE_HOME
    a path           that directory (created, mode 0700)
    off | 0 | false | no | none    no cache
A user who configured JAX's cache (``JAX_COMPILATION_CACHE_DIR``, ``jax_compilation_cache_dir`` or
``jax_enable_compilation_cache=False``) is left alone: jaxml then changes no JAX setting. ``off`` always wins for
jaxml's own part (its settings and the exported programs below); JAX's cache, if the user set one, still works.

Settings applied with jaxml's directory (each unless its ``JAX_...`` environment variable is set):
    jax_persistent_cache_min_compile_time_secs = MIN_COMPILE_TIME_S  (keep the many small programs too)
    jax_persistent_cache_min_entry_size_bytes  = -1
    jax_compilation_cache_max_size = MAX_SIZE_BYTES when ``filelock`` is importable (LRU eviction and a file
        lock around every read and write, so processes sharing the directory never read a half-written entry)

Damage is repaired, never warned about forever: ``repair`` deletes entries a killed process left half-written,
and an entry JAX fails to read is deleted at that first failure (``replace_unreadable``), so the program JAX
then compiles is written in its place. The traced programs of ``export_cache.jit_once`` live beside, in
``jaxml-exported/``. The directory holds executable code: keep it private.
"""
from __future__ import annotations

import contextlib
import glob
import os
import warnings

import jax

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
_READ_ERROR = "Error reading persistent compilation cache entry for '"   # JAX's warning, then the module name

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
    path = requested_dir()
    if path is None:
        _state.update(dir=None, why=f"{ENV}={os.environ.get(ENV)}")
        return None
    if _user_configured():
        _state.update(dir=jax.config.jax_compilation_cache_dir, why="configured by the user")
        return _state["dir"]
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
    _watch_read_errors(path)
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


def replace_unreadable(path: str, module_name: str) -> str | None:
    """Delete the entry of ``module_name`` that JAX has just failed to read; returns its file name.

    JAX's key is ``MODULE-HASH``; a read stamps ``KEY-atime`` with the time, so the failed entry is the module's
    one with the newest stamp (without stamps, i.e. without ``filelock``, the only entry of that module, if one).
    Deleted, the entry is written afresh by JAX right after the compile that follows the failed read; left in
    place it would fail and be warned about in every later run (JAX never overwrites an entry)."""
    entries = glob.glob(os.path.join(glob.escape(path), glob.escape(module_name) + "-*" + _CACHE_SUFFIX))
    stamps = {e: _stamp(e[:-len(_CACHE_SUFFIX)] + _ATIME_SUFFIX) for e in entries}
    if any(stamps.values()):
        entry = max(entries, key=stamps.get)
    elif len(entries) == 1:
        entry = entries[0]
    else:
        return None
    lock = (filelock.FileLock(os.path.join(path, ".lockfile"), timeout=LOCK_TIMEOUT_S) if filelock is not None
            else contextlib.nullcontext())
    try:
        with lock:
            for name in (entry, entry[:-len(_CACHE_SUFFIX)] + _ATIME_SUFFIX):
                if os.path.exists(name):
                    os.remove(name)
    except (OSError, RuntimeError):   # filelock.Timeout is an OSError (TimeoutError)
        return None
    return os.path.basename(entry)


def _stamp(atime_path: str) -> int:
    try:
        with open(atime_path, "rb") as f:
            return int.from_bytes(f.read(8), "little")
    except OSError:
        return 0


def _watch_read_errors(path: str) -> None:
    """Turn JAX's "Error reading persistent compilation cache entry" warning into ``replace_unreadable`` and one
    warning naming the deleted file. JAX reports a failed read only by that warning (``warnings.warn`` in
    ``jax._src.compiler._cache_read``), so jaxml chains a ``warnings.showwarning`` (the documented hook)."""
    previous = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text.startswith(_READ_ERROR):
            module_name, _, why = text[len(_READ_ERROR):].partition("'")
            removed = replace_unreadable(path, module_name)
            if removed is not None:
                why = (why.lstrip(": ").splitlines() or [""])[0][:200]
                message = (f"jaxml: compilation cache entry {os.path.join(path, removed)} is unreadable ({why}); "
                           "deleted, compiled afresh and written again")
        previous(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning


def status() -> dict:
    """{"dir": path or None, "why": how it was decided} (empty before the first ``enable()``)."""
    return dict(_state)
