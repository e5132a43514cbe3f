"""A CIFAR-style ResNet on MNIST: stem conv 3x3 (32) then 3 stages of 2 basic blocks (32, 64, 128 channels,
strides 1, 2, 2; projection shortcuts), global average pooling, dense(10) — ResNet-14 widened. Per-pixel
standardised inputs, random crops of the 2-pixel zero-padded image (no flips: digits are not mirror-symmetric),
Adam 1e-3 with cosine decay, batch 128, 15 epochs; 5 % of train held out (stratified) as the validation split on
which any change of these settings must be judged, never on test. The recipe is the usual CIFAR ResNet one
(He et al. 2016) scaled to 28 x 28 digits; not tuned here.

Command:  python launch/train.py --config=configs/mnist_resnet.py --workdir=runs/mnist_resnet
          (``:quick``: a 4-step smoke run of a tiny ResNet on 256 images; data from $JAXML_DATA_DIR/mnist)
Expected: goal test accuracy >= 0.995 (issue #31) — full run PENDING (not yet run; see
          jaxml/tasks/images/README.md).
Runtime:  estimated ~2-3 h on 2 quiet CPU cores (not yet measured).
"""
from jaxml.tasks.images import image_config
from jaxml.tasks.images.config import resnet_model, tiny_smoke_run


def get_config(arg=None):
    c, flags = image_config("mnist", "cnn", (), arg)
    quick = "quick" in flags
    c.model = resnet_model(quick)
    c.data.standardize = True
    c.data.augment_crop = 2
    c.data.augment_flip = False
    c.optimizer.schedule = "cosine"
    c.train.num_epochs = 12
    if quick:
        tiny_smoke_run(c)
    return c
