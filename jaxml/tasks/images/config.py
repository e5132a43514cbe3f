"""The image-classification config family shared by ``configs/{mnist,fashion}_{mlp,cnn}.py``.

``image_config(dataset, model, layers, arg)`` builds an MNIST / Fashion-MNIST classification config;
``arg`` is the text after ``:`` in ``--config=configs/x.py:arg``, a comma list of
    permuted   one fixed random permutation of the 784 pixels (seed 0), train and test alike
    quick      a CPU smoke run: 2,048 training examples, one epoch
"""
from __future__ import annotations

import os

import ml_collections

from jaxml.train.config import base_config, config_args

ARGS = ("permuted", "quick")


def image_config(dataset: str, model: str, layers: tuple, arg: str | None):
    flags = config_args(arg, ARGS)
    c = base_config()
    c.seed = 0
    c.objective = "softmax_xent"
    c.model.name = model
    c.model.layers = layers
    c.model.activation = "relu"
    c.model.initializer = "glorot_uniform"
    c.model.remat = False                                        # jax.checkpoint per block (models/sequential.py)
    c.data.name = dataset
    c.data.source = "idx"                                        # or "tfds"
    c.data.data_dir = os.environ.get("JAXML_DATA_DIR", "")       # parent of mnist/ and fashion_mnist/
    c.data.validation_fraction = 0.05                            # the report: 0.15, then 0.05
    c.data.split_seed = 0
    c.data.permute_seed = 0 if "permuted" in flags else -1
    c.data.standardize = False
    c.data.train_limit = 0
    c.data.augment_shift = 0                                     # > 0: random translations
    c.data.batch_size = 128
    c.data.eval_batch_size = 1000
    c.optimizer.name = "adam"
    c.optimizer.lr = 1e-3
    c.train.log_every = 100
    c.train.checkpoint_every = 1000
    c.reports = ("curves", "confusion_matrix")
    if "quick" in flags:
        c.data.train_limit = 2048
        c.train.num_epochs = 1
        c.train.log_every = 4
    return c, flags


def resnet_model(quick: bool, widths=(16, 32, 64)):
    """The model section of ``configs/{mnist,fashion}_resnet.py``: a CIFAR-stem ResNet of 3 stages x 1 basic
    block of ``widths`` channels (ResNet-8); ``quick``: 2 stages x 1 block (8, 16)."""
    return ml_collections.ConfigDict({"name": "resnet", "stages": (1, 1) if quick else (1, 1, 1),
                                      "widths": (8, 16) if quick else tuple(widths), "stem": "cifar",
                                      "num_outputs": 10, "bn_momentum": 0.9, "conv_impl": "auto",
                                      "remat": False})


def tiny_smoke_run(c, steps: int = 4):
    """A test-sized run of a config: 256 training images, batches of 32, ``steps`` steps."""
    c.data.train_limit = 256
    c.data.batch_size = 32
    c.data.eval_batch_size = 64
    c.train.num_steps = steps
    return c
