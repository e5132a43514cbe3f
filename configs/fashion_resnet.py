"""A CIFAR-style ResNet-8 on Fashion-MNIST: stem conv 3x3 (32) then 3 stages of 1 basic block (32, 64, 128
channels, strides 1, 2, 2; projection shortcuts), global average pooling, dense(10). Per-pixel standardised
inputs, random crops of the 2-pixel zero-padded image and horizontal flips (garments are mirror-symmetric), SGD
with Nesterov momentum 0.9, lr 0.05 with cosine decay, weight decay as l2 5e-4, batch 128, 15 epochs — the CIFAR
ResNet recipe (He et al. 2016) at 28 x 28, one block per stage for 2 CPU cores; 5 % of train held out
(stratified) as the validation split on which any change must be judged, never on test.

Command:  python launch/train.py --config=configs/fashion_resnet.py --workdir=runs/fashion_resnet
          (``:quick``: a 4-step smoke run of a tiny ResNet on 256 images; data from $JAXML_DATA_DIR/fashion_mnist)
Expected: test accuracy 0.9323, validation 0.9380 (goal 0.945, issue #31: missed; the report's CNN here: 0.9341;
          jaxml/tasks/images/README.md).
Runtime:  6,675 steps; 5,478 s on 2 CPU cores (478 s of it paused).
"""
from jaxml.tasks.images import image_config
from jaxml.tasks.images.config import resnet_model, tiny_smoke_run


def get_config(arg=None):
    c, flags = image_config("fashion_mnist", "cnn", (), arg)
    quick = "quick" in flags
    c.model = resnet_model(quick, widths=(32, 64, 128))
    c.data.standardize = True
    c.data.augment_crop = 2
    c.data.augment_flip = True
    c.optimizer.name = "nesterov"
    c.optimizer.lr = 0.05
    c.optimizer.momentum = 0.9
    c.optimizer.schedule = "cosine"
    c.regularization.l2 = 5e-4
    c.train.num_epochs = 15
    if quick:
        tiny_smoke_run(c)
    return c
