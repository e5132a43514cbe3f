"""``jit_once``: a jitted function whose traced program a later process loads instead of tracing it again.

The persistent compilation cache (``compile_cache``) skips only XLA's compile; on a CPU, tracing and lowering are
then much of a repeated command's time. With the cache on, the first call for each argument signature exports
the traced program (``jax.export``: StableHLO, input/output trees and shardings) to
``<cache dir>/jaxml-exported/`` and runs it through ``Exported.call``; a later process loads the file and runs
the same module, which XLA's cache has compiled. Same module, same XLA program: results are bit for bit those
of ``jax.jit(fun)``.

Each entry is one file, written atomically:

    MAGIC                                  b"jaxml-exported 2\\n"
    {"key": KEY, "sha256": D, "bytes": N}  one JSON line: the full key the entry is stored under
    payload                                N bytes, sha256 D: the serialized Exported

A load checks the magic, that KEY is the key being looked up and that the payload has N bytes of digest D
before anything is deserialised; an entry that fails (swapped, truncated, a flipped bit, no key record) is
re-exported and replaced, with one warning naming the file. The MLIR bytecode reader never sees a damaged file.
"""
from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import os
import tempfile
import threading
import warnings

import jax
import jaxlib

from jaxml import compile_cache

try:  # private: JAX's LAPACK set-up before lowering an Exported (see without_lapack_setup)
    from jax._src.export import _export as _jax_export_impl
except ImportError:  # moved: nothing is skipped (tests/test_compile_cache.py notices)
    _jax_export_impl = None

EXPORTED_SUBDIR = "jaxml-exported"   # traced + lowered programs (jax.export), beside XLA's compiled ones
MAX_EXPORTED = 256                   # files kept there, most recently used first
MAGIC = b"jaxml-exported 2\n"
_MAX_HEADER = 1 << 20
_CONFIG_KEYS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
                "jax_numpy_dtype_promotion", "jax_default_prng_impl", "jax_threefry_partitionable")
_stats = {"exported": 0, "loaded": 0}


class DamagedEntry(Exception):
    """An exported-program file that does not hold what its key says (the message says why)."""


def jit_once(name: str, fun, *, static_key: str = "", compiler_options: dict | None = None, mesh=None):
    """``jax.jit(fun, compiler_options=...)`` that a later process runs without tracing or lowering it again.

    The key holds ``name``, ``static_key`` (everything ``fun`` closes over that shapes its trace: the caller
    must pass it), the arguments' tree, shapes, dtypes and shardings, the compiler options, the jax/jaxlib
    versions, the JAX settings that change a trace, and a digest of every source file of the jaxml package
    (editing jaxml retraces); the file name is a hash of it. A ``fun`` that cannot be exported (host callbacks,
    ordered effects) runs as plain ``jax.jit`` with a warning; so does every call with the cache off or in a
    multi-process run. ``mesh``: the devices of ``fun``'s shard_map; a loaded program is called under
    ``jax.set_mesh(mesh)``, which gives its call that many devices.
    """
    jitted = jax.jit(fun, compiler_options=compiler_options)
    programs: dict = {}

    def call(*args):
        root = compile_cache.enable()
        if root is None or jax.process_count() > 1:   # a cluster: every process traces (JAX's cache still works)
            return jitted(*args)
        leaves, tree = jax.tree.flatten(args)
        signature = (str(tree),) + tuple(_leaf_signature(x) for x in leaves)
        program = programs.get(signature)
        if program is None:
            key = repr((name, static_key, signature, sorted((compiler_options or {}).items()),
                        _environment_digest()))
            digest = hashlib.sha256(key.encode()).hexdigest()[:40]
            path = os.path.join(root, EXPORTED_SUBDIR, f"{name.replace('/', '_')}-{digest}.jaxexport")
            exported = load_or_export(path, key, jitted, args)
            if exported is None:
                program = programs[signature] = jitted
            else:
                program = programs[signature] = jax.jit(exported.call, compiler_options=compiler_options)
                with without_lapack_setup(exported), (contextlib.nullcontext() if mesh is None
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
    return dict(_stats)


def write_entry(path: str, key: str, payload: bytes) -> None:
    """Store ``payload`` under ``key`` at ``path`` (the format in the module docstring), atomically."""
    header = json.dumps({"key": key, "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)})
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as f:
        f.write(MAGIC + header.encode() + b"\n" + payload)
    os.replace(f.name, path)      # a reader sees the whole file or none


def read_entry(path: str, key: str) -> bytes:
    """The payload stored at ``path`` under ``key``; raises DamagedEntry saying what does not match."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise DamagedEntry("has no key record (not a jaxml-exported file of this version)")
        line = f.readline(_MAX_HEADER)
        payload = f.read()
    try:
        header = json.loads(line)
        stored_key, digest, size = header["key"], header["sha256"], header["bytes"]
    except (ValueError, KeyError, TypeError):
        raise DamagedEntry("has an unreadable key record") from None
    if stored_key != key:
        raise DamagedEntry("holds the program of another key")
    if len(payload) != size:
        raise DamagedEntry(f"is truncated or extended ({len(payload)} bytes, the record says {size})")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise DamagedEntry("does not match its digest (a changed byte)")
    return payload


def lapack_skip_available() -> bool:
    """Whether JAX's private LAPACK set-up hook is where ``without_lapack_setup`` patches it."""
    return callable(getattr(_jax_export_impl, "_ensure_backends_initialized", None))


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


def load_or_export(path: str, key: str, jitted, args):
    """The Exported program stored at ``path`` under ``key`` (checked by ``read_entry`` before it is
    deserialised), else ``jitted`` exported for ``args`` and stored there, replacing a damaged entry with one
    warning naming it. None: ``jitted`` cannot be exported."""
    if os.path.exists(path):
        try:
            program = jax.export.deserialize(bytearray(read_entry(path, key)))
            os.utime(path)            # most recently used
            _stats["loaded"] += 1
            return program
        except Exception as e:        # damaged, foreign or unreadable: export afresh and replace it
            why = str(e) if isinstance(e, DamagedEntry) else f"is unreadable ({type(e).__name__}: {e})"
            warnings.warn(f"jaxml: exported program {path} {why}; re-exported and replaced", RuntimeWarning,
                          stacklevel=3)
            _remove(path)             # gone even if the program no longer exports
    try:
        program = jax.export.export(jitted)(*args)
    except Exception as e:            # not exportable (a host callback, ...): run it as plain jit, which re-raises
        warnings.warn(f"jaxml: {os.path.basename(path)} not exported ({type(e).__name__}: {e}); tracing it "
                      "in every process", RuntimeWarning, stacklevel=3)  # a genuine error in the function
        return None
    _stats["exported"] += 1
    try:
        write_entry(path, key, bytes(program.serialize()))
        _evict(os.path.dirname(path))
    except OSError as e:
        warnings.warn(f"jaxml: could not store exported program {path!r} ({e})", RuntimeWarning, stacklevel=3)
    return program


_lapack_lock = threading.Lock()


@contextlib.contextmanager
def without_lapack_setup(exported):
    """Lower ``exported.call`` without JAX's LAPACK set-up when the module calls no LAPACK kernel.

    On a CPU, lowering any ``Exported.call`` first registers jaxlib's LAPACK kernels, which imports scipy.linalg,
    for kernels only a module with a ``lapack_*`` custom call uses (bench/README.md has the cost). The hook is
    private to JAX (``lapack_skip_available``): if it moves, nothing is skipped. A program lowered normally
    (``jnp.linalg`` ...) still sets LAPACK up itself.
    """
    if not lapack_skip_available() or b"lapack" in exported.mlir_module_serialized:
        yield
        return
    ensure = _jax_export_impl._ensure_backends_initialized
    with _lapack_lock:
        _jax_export_impl._ensure_backends_initialized = lambda platforms: None
        try:
            yield
        finally:
            _jax_export_impl._ensure_backends_initialized = ensure


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
