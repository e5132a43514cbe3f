"""A small MLP on Gaussian blobs (data jaxml makes itself) — the multi-device / multi-host demo.

Command (one process):    python launch/train.py --config=configs/blobs_mlp.py --workdir=/tmp/blobs
Command (4 fake devices): python launch/train.py --config=configs/blobs_mlp.py --workdir=/tmp/blobs4 \
                              --num_cpu_devices=4 --config.parallel.backend=shard_map
Command (2 processes x 2 devices, one cluster):
    python launch/local_cluster.py --num_processes=2 --devices_per_process=2 -- \
        python launch/train.py --config=configs/blobs_mlp.py --workdir=/tmp/blobs_cluster \
        --config.parallel.backend=shard_map
Expected: test accuracy > 0.95 after 3 epochs; every layout gives the same params within 1e-5.
Runtime:  a few seconds after compilation.
"""
from jaxml.tasks import toy  # noqa: F401  (registers the toy datasets and the zhou_predictions report)
from jaxml.train.config import base_config, config_args


def get_config(arg=None):
    args = config_args(arg, ("steps20",))
    c = base_config()
    c.model.name = "mlp"
    c.model.widths = (32, 16)
    c.model.batch_norm = True
    c.data.name = "blobs"
    c.data.batch_size = 64
    c.data.eval_batch_size = 64
    c.optimizer.name = "sgd"
    c.optimizer.lr = 0.05
    c.train.num_epochs = 3
    c.train.log_every = 10
    c.train.checkpoint_every = 10
    c.parallel.backend = "shard_map"
    if "steps20" in args:
        c.train.num_epochs = 0
        c.train.num_steps = 20
    return c
