"""Training: state, steps, drivers, checkpoints and the one loop ``train_and_evaluate``."""
from jaxml.train.loop import train_and_evaluate  # noqa: F401
