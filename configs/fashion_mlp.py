"""The deeper Fashion-MNIST MLP: Dense(1024)-BN-Dropout(0.3)-Dense(512)-BN-Dropout(0.3)-Dense(256)-BN-
Dropout(0.2)-Dense(10), ReLU, Adam with cosine decay, batch 128, 5 % validation split, 30 epochs.

Command:  python launch/train.py --config=configs/fashion_mlp.py --workdir=runs/fashion_mlp
          (``:permuted`` / ``:quick``; data from $JAXML_DATA_DIR/fashion_mnist)
Expected: test accuracy 0.9084 (seed 0; report 0.877, goal >= 0.89); all runs: jaxml/tasks/images/README.md.
Runtime:  ~10 min on 2 CPU cores.
"""
from jaxml.tasks.images import image_config

LAYERS = ("flatten", "dense:1024", "bn", "act", "dropout:0.3", "dense:512", "bn", "act", "dropout:0.3",
          "dense:256", "bn", "act", "dropout:0.2")


def get_config(arg=None):
    c, flags = image_config("fashion_mnist", "mlp", LAYERS, arg)
    c.train.num_epochs = 1 if "quick" in flags else 30
    c.optimizer.schedule = "cosine"
    return c
