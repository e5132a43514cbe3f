"""The package surface: ``jaxml.__version__``, lazy ``jaxml.<subpackage>`` access, and ``import jaxml`` staying
light (no plotting, TFDS or checkpointing). The README's Python API block runs in tests/test_fit.py."""
import json
import subprocess
import sys

import pytest

import jaxml


def test_version():
    assert jaxml.__version__ == "0.2.0"
    assert "__version__" in jaxml.__all__


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
