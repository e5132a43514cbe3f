"""The persistent compilation cache (jaxml.compile_cache): where a fresh process writes it, that a second process
reads it back, that ``off`` writes nothing and that a user's own JAX cache setting wins."""
import json
import os
import subprocess
import sys

import pytest

# A naive Bayes fit: a library entry point that enables the cache on first use, with small, quick programs.
_CHILD = """
import json, sys
from jax import monitoring
events = []
monitoring.register_event_listener(lambda e, **kw: events.append(e.rsplit("/", 1)[-1]))
from jaxml import compile_cache
from jaxml.naive_bayes import fit_text_classifier
model = fit_text_classifier(["a fine film", "a dull film", "fine acting", "dull plot"], [1, 0, 1, 0], num_classes=2)
print(json.dumps({"status": compile_cache.status(), "hits": events.count("cache_hits"),
                  "misses": events.count("cache_misses"), "requests": events.count("compile_requests_use_cache"),
                  "predicted": model.predict(["fine fine", "dull"]).tolist()}))
"""


def _run(env_extra: dict, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAXML_COMPILATION", "JAX_COMPILATION",
                                                                       "JAX_PERSISTENT", "XDG_CACHE"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu", **env_extra)
    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["predicted"] == [1, 0]
    return result


# K-means, 2 devices (a sharded program) and 1, fitted from the same data: what each process reports.
_KMEANS_CHILD = """
import json, sys
import jax
jax.config.update("jax_num_cpu_devices", 2)
import numpy as np
from jax import monitoring
events = []
monitoring.register_event_listener(lambda e, **kw: events.append(e.rsplit("/", 1)[-1]))
from jaxml import export_cache
from jaxml.kmeans import kmeans
from jaxml.parallel import data_mesh
x = np.random.default_rng(0).normal(size=(3000, 3)).astype(np.float32)
out = [kmeans(x, 4, n_init=2, seed=0, mesh=m) for m in (None, data_mesh())]
print(json.dumps({"stats": export_cache.exported_stats(), "misses": events.count("cache_misses"),
                  "centers": [np.asarray(r.centers).tobytes().hex() for r in out],
                  "labels": [np.asarray(r.labels).tobytes().hex() for r in out],
                  "n_iter": [int(r.n_iter) for r in out]}))
"""


def _child(code: str, env_extra: dict, tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAXML_COMPILATION", "JAX_COMPILATION",
                                                                       "JAX_PERSISTENT", "XDG_CACHE"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_PLATFORMS="cpu", **env_extra)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_repeated_process_reuses_the_exported_programs_bit_for_bit(tmp_path):
    """The second process loads the traced programs (jit_once) instead of tracing them, XLA compiles nothing,
    and the fits equal the first process's and a cache-off process's bit for bit, on 1 and 2 devices."""
    cache = tmp_path / "cache"
    first = _child(_KMEANS_CHILD, {"JAXML_COMPILATION_CACHE": str(cache)}, tmp_path)
    assert first["stats"] == {"exported": 2, "loaded": 0}
    stored = sorted(os.listdir(cache / "jaxml-exported"))
    assert len(stored) == 2 and all(name.startswith("kmeans_fit-") for name in stored)
    second = _child(_KMEANS_CHILD, {"JAXML_COMPILATION_CACHE": str(cache)}, tmp_path)
    assert second["stats"] == {"exported": 0, "loaded": 2}
    assert second["misses"] == 0, second["misses"]          # the loaded modules were compiled by the first run
    plain = _child(_KMEANS_CHILD, {"JAXML_COMPILATION_CACHE": "off"}, tmp_path)
    assert plain["stats"] == {"exported": 0, "loaded": 0}
    for key in ("centers", "labels", "n_iter"):
        assert first[key] == second[key] == plain[key], key
    (cache / "jaxml-exported" / stored[0]).write_bytes(b"torn")      # a damaged file is replaced, not fatal
    third = _child(_KMEANS_CHILD, {"JAXML_COMPILATION_CACHE": str(cache)}, tmp_path)
    assert third["stats"] == {"exported": 1, "loaded": 1} and third["centers"] == plain["centers"]


_CALLBACK_CHILD = """
import json, warnings
import jax, jax.numpy as jnp
from jaxml import export_cache
def f(x):
    jax.debug.callback(lambda v: None, x)     # a host callback: jax.export refuses it
    return jnp.cumsum(x) * 2
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    y = export_cache.jit_once("with_callback", f)(jnp.arange(4.0))
print(json.dumps({"y": y.tolist(), "stats": export_cache.exported_stats(),
                  "warned": any("not exported" in str(w.message) for w in caught)}))
"""


def test_a_program_that_cannot_be_exported_runs_as_plain_jit(tmp_path):
    out = _child(_CALLBACK_CHILD, {"JAXML_COMPILATION_CACHE": str(tmp_path / "cache")}, tmp_path)
    assert out == {"y": [0.0, 2.0, 6.0, 12.0], "stats": {"exported": 0, "loaded": 0}, "warned": True}


_LAPACK_CHILD = """
import json, sys
import numpy as np
import jax.numpy as jnp
from jaxml import export_cache
a = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]], np.float32)
b = np.array([1.0, 2.0, 3.0], np.float32)
add = export_cache.jit_once("add_one", lambda v: v + 1.0)(b)          # no LAPACK call in its module
after_add = "scipy.linalg" in sys.modules
solve = export_cache.jit_once("solve", jnp.linalg.solve)(a, b)       # a lapack_*getrf custom call
print(json.dumps({"stats": export_cache.exported_stats(), "scipy_linalg_after_add": after_add,
                  "add": np.asarray(add).tolist(), "residual": float(np.abs(a @ np.asarray(solve) - b).max())}))
"""


def test_a_loaded_program_sets_up_lapack_only_when_it_calls_lapack(tmp_path):
    """Loading an exported program skips JAX's LAPACK set-up (an import of scipy.linalg) unless its module calls
    a LAPACK kernel; one that does still runs correctly in a fresh process (without the set-up XLA would fail to
    find the kernel)."""
    env = {"JAXML_COMPILATION_CACHE": str(tmp_path / "cache")}
    first = _child(_LAPACK_CHILD, env, tmp_path)
    second = _child(_LAPACK_CHILD, env, tmp_path)
    assert first["stats"] == {"exported": 2, "loaded": 0} and second["stats"] == {"exported": 0, "loaded": 2}
    for out in (first, second):
        assert out["add"] == [2.0, 3.0, 4.0] and out["residual"] < 1e-5, out
    assert second["scipy_linalg_after_add"] is False


def _entries(path) -> list[str]:
    return sorted(f for f in os.listdir(path) if f.endswith("-cache")) if os.path.isdir(path) else []


@pytest.mark.slow
def test_cache_written_to_the_configured_dir_and_read_back(tmp_path):
    cache = tmp_path / "cache"
    first = _run({"JAXML_COMPILATION_CACHE": str(cache)}, tmp_path)
    assert first["status"] == {"dir": str(cache), "why": "JAXML_COMPILATION_CACHE"}
    written = _entries(cache)
    assert written and first["hits"] == 0 and first["misses"] >= 1
    assert (os.stat(cache).st_mode & 0o777) == 0o700           # executable code: private to the user
    second = _run({"JAXML_COMPILATION_CACHE": str(cache)}, tmp_path)
    assert second["hits"] >= 1 and second["misses"] == 0, second   # read back, nothing compiled afresh
    assert _entries(cache) == written
    assert not os.path.exists(tmp_path / "xdg" / "jaxml")


def test_default_dir_is_under_xdg_cache_home(tmp_path):
    result = _run({}, tmp_path)
    default = tmp_path / "xdg" / "jaxml" / "jax"
    assert result["status"] == {"dir": str(default), "why": "default"}
    assert _entries(default)


def test_an_entry_left_by_a_killed_process_does_not_stop_later_writes(tmp_path):
    """A ``-cache`` file without its ``-atime`` (a process killed between JAX's two writes) made every later
    write fail in JAX's eviction scan; enabling the cache deletes it and the fit's programs are written."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "jit_killed-0123-cache").write_bytes(b"torn")
    (cache / "jit_whole-4567-cache").write_bytes(b"entry")
    (cache / "jit_whole-4567-atime").write_bytes((1).to_bytes(8, "little"))
    _run({"JAXML_COMPILATION_CACHE": str(cache)}, tmp_path)
    written = _entries(cache)
    assert "jit_killed-0123-cache" not in written and "jit_whole-4567-cache" in written
    assert len(written) >= 2                                     # new programs were written beside the old one
    assert all((cache / (name[:-len("-cache")] + "-atime")).exists() for name in written)


def test_off_writes_nothing(tmp_path):
    result = _run({"JAXML_COMPILATION_CACHE": "off"}, tmp_path)
    assert result["status"]["dir"] is None
    assert not os.path.exists(tmp_path / "xdg") and not os.path.exists(tmp_path / "home" / ".cache")


@pytest.mark.slow
def test_a_users_jax_cache_dir_wins(tmp_path):
    theirs = tmp_path / "theirs"
    result = _run({"JAX_COMPILATION_CACHE_DIR": str(theirs), "JAXML_COMPILATION_CACHE": str(tmp_path / "ours")},
                  tmp_path)
    assert result["status"] == {"dir": str(theirs), "why": "configured by the user"}
    assert not os.path.exists(tmp_path / "ours") and not os.path.exists(tmp_path / "xdg")


def test_off_with_a_users_jax_cache_dir_keeps_jaxml_out_and_jax_caching(tmp_path):
    """``off`` wins for jaxml's part (no settings, no exported programs); the user's JAX cache still fills."""
    theirs = tmp_path / "theirs"
    result = _run({"JAX_COMPILATION_CACHE_DIR": str(theirs), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                   "JAXML_COMPILATION_CACHE": "off"}, tmp_path)
    assert result["status"] == {"dir": None, "why": "JAXML_COMPILATION_CACHE=off"}
    assert _entries(theirs) and not os.path.exists(theirs / "jaxml-exported")
    again = _run({"JAX_COMPILATION_CACHE_DIR": str(theirs), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                  "JAXML_COMPILATION_CACHE": "off"}, tmp_path)
    assert again["hits"] > 0 and again["misses"] == 0, again


_JIT_CHILD = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import jax, jax.numpy as jnp
    from jaxml import compile_cache
    compile_cache.enable()
    y = jax.jit(lambda v: jnp.cumsum(v) * 3.0)(jnp.arange(5.0))
print(json.dumps({"y": y.tolist(), "warned": [str(w.message) for w in caught if "cache" in str(w.message)]}))
"""


def _garble_flip(data: bytes) -> bytes:
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    return bytes(flipped)


@pytest.mark.parametrize("garble", [_garble_flip, lambda data: data[:len(data) // 2]], ids=["flipped", "truncated"])
def test_a_garbled_xla_cache_entry_is_replaced_after_its_first_failure(tmp_path, garble):
    """JAX warns about an entry it cannot read and never overwrites it; jaxml deletes it at that first failure,
    so the run gives the right result with one warning naming the file and the next run is silent."""
    cache = tmp_path / "cache"
    env = {"JAXML_COMPILATION_CACHE": str(cache)}
    first = _child(_JIT_CHILD, env, tmp_path)
    assert first == {"y": [0.0, 3.0, 9.0, 18.0, 30.0], "warned": []}
    (entry,) = [name for name in _entries(cache) if "lambda" in name]
    intact = (cache / entry).read_bytes()
    (cache / entry).write_bytes(garble(intact))
    second = _child(_JIT_CHILD, env, tmp_path)
    assert second["y"] == first["y"]
    assert len(second["warned"]) == 1 and str(cache / entry) in second["warned"][0], second["warned"]
    assert (cache / entry).read_bytes() != garble(intact)          # written afresh
    assert _child(_JIT_CHILD, env, tmp_path) == first              # silent from then on
