"""The from-scratch tutorial (Victor Zhou): a 2-2-1 sigmoid network predicting gender from
(weight - 135, height - 66) of four people, MSE, plain SGD lr 0.1, one sample per step, 1000 epochs.

Command:  python launch/train.py --config=configs/zhou_gender.py --workdir=runs/zhou   (``:quick``: 100 epochs)
Expected: the last lines print  Emily: 0.947  and  Frank: 0.039  (the tutorial, from its own random start:
          0.951 / 0.039); final train MSE 0.0023.
Runtime:  ~10 s on 2 CPU cores (4,000 jitted steps).
"""
from jaxml.tasks import toy  # noqa: F401  (registers the toy datasets and the zhou_predictions report)
from jaxml.train.config import base_config, config_args


def get_config(arg=None):
    args = config_args(arg, ("quick",))
    c = base_config()
    c.seed = 0
    c.objective = "mse"
    c.model.name = "neuron_net"
    c.data.name = "zhou_gender"
    c.data.batch_size = 1
    c.data.eval_batch_size = 4
    c.data.shuffle = False            # the tutorial walks the people in order
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.1
    c.train.num_epochs = 1000
    c.train.log_every = 400           # every 100 epochs, as the tutorial prints
    c.train.eval_every = 400
    c.train.checkpoint_every = 2000
    c.reports = ("zhou_predictions", "curves")
    if "quick" in args:
        c.train.num_epochs = 100
    return c
