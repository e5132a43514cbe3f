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
