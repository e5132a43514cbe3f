"""The package surface: ``jaxml.__version__``, the README's Python API block (run as written) through lazy
``jaxml.<subpackage>`` access, and ``import jaxml`` staying light (no plotting, TFDS or checkpointing)."""
import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxml


def test_version():
    assert jaxml.__version__ == "0.2.0"
    assert "__version__" in jaxml.__all__


def readme_python_block(section: str) -> str:
    """The first ```python block under the README heading ``section``."""
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    body = text[text.index(f"## {section}\n"):]
    return body[body.index("```python\n") + 10:body.index("\n```", body.index("```python\n"))]


def test_readme_python_api_block_runs_as_written():
    """The README's Python API block, executed with small arrays: the model contract's pytrees and a `fit`."""
    rng = np.random.default_rng(0)
    key, step_key = jax.random.split(jax.random.key(0))
    x, xt = rng.normal(size=(256, 28, 28, 1)).astype(np.float32), rng.normal(size=(32, 28, 28, 1)).astype(np.float32)
    y, yt = rng.integers(0, 10, 256).astype(np.int32), rng.integers(0, 10, 32).astype(np.int32)
    scope = {"jaxml": jaxml, "key": key, "step_key": step_key, "x": x, "y": y, "xt": xt, "yt": yt}
    exec(readme_python_block("Python API"), scope)
    params, state, run = scope["params"], scope["state"], scope["run"]
    assert scope["out"].shape == (256, 10)
    assert {"w", "b"} <= set(params["dense_0"]) and {"mean", "var"} <= set(state["bn_0"])
    assert run.predict(xt).shape == (32, 10) and set(run.final) == {"test"}
    assert run.evaluate((xt, yt))["accuracy"] == pytest.approx(run.final["test"]["accuracy"])


def test_subpackages_resolve_lazily():
    assert callable(jaxml.train.train_and_evaluate)
    assert callable(jaxml.kmeans.kmeans)
    for name in jaxml.__all__:
        assert getattr(jaxml, name) is not None, name
    assert set(jaxml.__all__) <= set(dir(jaxml))
    with pytest.raises(AttributeError, match="no_such_module"):
        jaxml.no_such_module


def test_import_jaxml_is_light():
    code = ("import sys, json, jaxml; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'matplotlib', 'tensorflow_datasets', 'orbax', 'jax'}) + sorted(m for m in sys.modules "
            "if m.startswith('jaxml.'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
