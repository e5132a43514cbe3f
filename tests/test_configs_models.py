"""The new image configs (configs/{mnist,fashion}_resnet.py, mnist_vit.py) in their ``:quick`` form: each builds
its model and trains through the one loop (jaxml.train.fit on arrays), and mnist_resnet:quick reads the real
MNIST with its crop augmentation where $JAXML_DATA_DIR holds it."""
import importlib.util
import pathlib

import numpy as np
import pytest

from jaxml import data
from jaxml.data import augment
from jaxml.train import fit, train_and_evaluate

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(name, arg="quick"):
    spec = importlib.util.spec_from_file_location(name, ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


@pytest.mark.parametrize("name,model", [("mnist_resnet", "resnet"), ("mnist_vit", "vit"),
                                        pytest.param("fashion_resnet", "resnet", marks=pytest.mark.slow)])
def test_quick_image_config_trains_on_arrays(name, model):
    c = _config(name)
    assert c.model.name == model and c.train.num_steps == 4
    full = _config(name, "")
    assert full.train.num_steps == 0 and full.train.num_epochs >= 10 and full.data.augment_crop == 2
    rng = np.random.default_rng(0)
    arrays = {s: (rng.normal(size=(n, 28, 28, 1)).astype(np.float32), rng.integers(0, 10, n))
              for s, n in (("train", 64), ("test", 64))}
    c.train.progress_bar = False
    trained = fit(c, data=arrays)
    assert np.isfinite(trained.final["test"]["loss"])


@pytest.mark.slow
def test_mnist_resnet_quick_reads_mnist_with_crops(data_dir, tmp_path):
    c = _config("mnist_resnet")
    c.data.data_dir = data_dir
    c.train.progress_bar = False
    splits = data.build(c)
    assert isinstance(splits.train, augment.CropFlipAugmented) and splits.input_shape == (28, 28, 1)
    assert abs(float(splits.eval["test"]["x"].mean())) < 0.2                 # standardised pixels
    final = train_and_evaluate(c, str(tmp_path / "run")).final
    assert 0.0 <= final["test"]["accuracy"] <= 1.0
