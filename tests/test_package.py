"""The package surface: ``jaxml.__version__``, the README's model-contract snippet through lazy
``jaxml.<subpackage>`` access, and ``import jaxml`` staying light (no plotting, TFDS or checkpointing)."""
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

import jaxml


def test_version():
    assert jaxml.__version__ == "0.2.0"
    assert "__version__" in jaxml.__all__


def test_readme_model_contract_snippet():
    key, step_key = jax.random.split(jax.random.key(0))
    x = jnp.zeros((2, 28, 28, 1))
    model = jaxml.models.get("mlp", input_shape=(28, 28, 1), widths=(1024, 512), batch_norm=True)
    params = model.init(key)                  # {"dense_0": {"w", "b"}, "bn_0": {"scale", "bias"}, ...}
    state = model.init_state()                # {"bn_0": {"mean", "var"}}; {} for stateless models
    y, state = model.apply(params, x, state=state, train=True, key=step_key)
    assert y.shape == (2, 10)
    assert {"w", "b"} <= set(params["dense_0"]) and {"mean", "var"} <= set(state["bn_0"])


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
