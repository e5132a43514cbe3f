"""The Fashion-MNIST CNN: the digit CNN widened, with more dropout — Conv(32,3)-BN-Conv(64,3)-BN-MaxPool-
Dropout(0.25)-Conv(128,3)-BN-MaxPool-Dropout(0.3)-Flatten-Dense(256)-BN-Dropout(0.4)-Dense(10), ReLU,
'same' convolutions, Adam with cosine decay, batch 128, 20 epochs, training images randomly translated by up
to 2 pixels (``data.augment_shift``, as the digit CNN).

Command:  python launch/train.py --config=configs/fashion_cnn.py --workdir=runs/fashion_cnn
          (``:permuted`` / ``:quick``; data from $JAXML_DATA_DIR/fashion_mnist)
Expected: test accuracy 0.9341 (seed 0; report 0.921, goal >= 0.93); all runs: jaxml/tasks/images/README.md.
Runtime:  ~1.2 h on 2 quiet CPU cores (convolutions as im2col + matmul).
"""
from jaxml.tasks.images import image_config

LAYERS = ("conv:32:3", "bn", "act", "conv:64:3", "bn", "act", "maxpool:2", "dropout:0.25",
          "conv:128:3", "bn", "act", "maxpool:2", "dropout:0.3", "flatten", "dense:256", "bn", "act", "dropout:0.4")


def get_config(arg=None):
    c, flags = image_config("fashion_mnist", "cnn", LAYERS, arg)
    c.model.conv_padding = "SAME"
    c.model.conv_impl = "auto"
    c.data.augment_shift = 2     # random translations by up to 2 px (permuted twin: in image space, then permuted)
    c.train.num_epochs = 1 if "quick" in flags else 20
    c.optimizer.schedule = "cosine"
    return c
