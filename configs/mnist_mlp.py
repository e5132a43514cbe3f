"""The report's selected digit MLP (its Table 3): Dense(1024)-BN-Dropout(0.1)-Dense(524)-Dense(10), ReLU,
Adam, batch 128, 5 % validation split; ``:permuted`` trains the same on pixel-permuted digits.

Command:  python launch/train.py --config=configs/mnist_mlp.py --workdir=/tmp/mnist_mlp
          (``:permuted`` for the permuted twin, ``:quick`` for a smoke run; data from $JAXML_DATA_DIR/mnist)
Expected: test accuracy — see the README results table (scripts/image_results.py); report 0.981, goal >= 0.985.
Runtime:  see the README table (2 CPU cores).
"""
from jaxml.train.presets import image_config

LAYERS = ("flatten", "dense:1024", "bn", "act", "dropout:0.1", "dense:524", "act")


def get_config(arg=None):
    c, flags = image_config("mnist", "mlp", LAYERS, arg)
    c.train.num_epochs = 1 if "quick" in flags else 20
    c.optimizer.schedule = "cosine"
    return c
