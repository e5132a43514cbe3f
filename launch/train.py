"""Train and evaluate one config: ``python launch/train.py --config=configs/x.py[:arg] --workdir=DIR``.

Override any field: ``--config.optimizer.lr=0.01``. Resumes from the latest checkpoint in --workdir.
Multi-host: pass --coordinator_address/--num_processes/--process_id (or the JAX_* environment
variables) and every process runs this same command.
"""
from __future__ import annotations

import os
import sys

from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and plots.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)   # orbax logs every save at INFO
    cluster_flags.setup()
    from jaxml.train import train_and_evaluate
    final = train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    for split, rec in final.items():
        shown = {k: round(v, 6) if isinstance(v, float) else v for k, v in rec.items() if k not in ("step", "split")}
        print(f"{split}: {shown}")


if __name__ == "__main__":
    import entry
    entry.run(main)
