"""Train and evaluate one config: ``python launch/train.py --config=configs/x.py[:arg] --workdir=DIR``.

Override any field: ``--config.optimizer.lr=0.01``. Resumes from the latest good checkpoint in --workdir; a
config that differs from the one stored there (``config.json``) is refused unless ``--allow_config_change`` names
the fields.
Preemption: SIGTERM or Ctrl-C saves a checkpoint after the step in progress, prints "jaxml: preempted at step N;
checkpoint saved; resume with the same command" and exits with status 75 (a second signal: at once, 128 + signal).
Multi-host: pass --coordinator_address/--num_processes/--process_id (or the JAX_* environment
variables) and every process runs this same command; all stop at the same step.
Example: python launch/train.py --config=configs/zhou_gender.py --workdir=/tmp/zhou
"""
from __future__ import annotations

from absl import flags
from ml_collections import config_flags

from jaxml.cli import common
from jaxml.train import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:arg]).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and plots.")
_ALLOW = flags.DEFINE_list("allow_config_change", [], "Config fields (e.g. optimizer.lr,train.num_steps) that may "
                           "differ from the config stored in --workdir when resuming (fine-tuning, extending a run).")
flags.mark_flags_as_required(["config", "workdir"])
flags.adopt_module_key_flags(common)


def main(argv):
    del argv
    config = common.setup(_CONFIG.value)    # with config.parallel.cpu_devices resolved (jaxml/layout.py)
    trained = train_and_evaluate(config, _WORKDIR.value, allow_config_change=_ALLOW.value)
    for split, rec in trained.final.items():
        shown = {k: round(v, 6) if isinstance(v, float) else v for k, v in rec.items() if k not in ("step", "split")}
        print(f"{split}: {shown}")


def run():
    common.run(main)


if __name__ == "__main__":
    run()
