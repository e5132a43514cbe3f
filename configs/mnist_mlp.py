"""The report's selected digit MLP (its Table 3): Dense(1024)-BN-Dropout(0.1)-Dense(524)-Dense(10), ReLU,
Adam with cosine decay, batch 128, 5 % validation split, 20 epochs; ``:permuted`` trains the same on
pixel-permuted digits.

Command:  python launch/train.py --config=configs/mnist_mlp.py --workdir=runs/mnist_mlp
          (``:permuted`` for the permuted twin, ``:quick`` for a smoke run; data from $JAXML_DATA_DIR/mnist)
Expected: test accuracy 0.9854 (seed 0; report 0.981, goal >= 0.985); all runs: jaxml/tasks/images/README.md.
Runtime:  ~6.5 min on 2 CPU cores.
"""
from jaxml.tasks.images import image_config

LAYERS = ("flatten", "dense:1024", "bn", "act", "dropout:0.1", "dense:524", "act")


def get_config(arg=None):
    c, flags = image_config("mnist", "mlp", LAYERS, arg)
    c.train.num_epochs = 1 if "quick" in flags else 20
    c.optimizer.schedule = "cosine"
    return c
