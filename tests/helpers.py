"""Test data and configs shared by several test modules."""
import numpy as np
from jax import monitoring
from sklearn.datasets import make_blobs

from jaxml.tasks import toy  # noqa: F401  (registers the blobs dataset blobs_config names)
from jaxml.train import config as config_lib


def blobs(n: int, d: int, k: int, seed: int = 0, *, std: float = 1.0, box=(-10.0, 10.0), dtype=np.float32):
    """x[n, d] drawn around k centres (scikit-learn's ``make_blobs``, centres uniform in ``box``)."""
    return make_blobs(n, d, centers=k, cluster_std=std, center_box=box, random_state=seed)[0].astype(dtype)


def blobs_config(*, model: dict | None = None, data: dict | None = None, optimizer: dict | None = None,
                 parallel: dict | None = None, precision: dict | None = None, **train):
    """A small MLP (one hidden layer of 16) on the ``blobs`` dataset, batches of 32, no progress bar; the
    ``model`` / ``data`` / ``optimizer`` / ``parallel`` / ``precision`` fields given replace these, ``train`` the
    ``config.train`` ones."""
    c = config_lib.base_config()
    c.model.name, c.model.widths = "mlp", (16,)
    c.data.name, c.data.batch_size = "blobs", 32
    c.train.progress_bar = False
    c.model.update(model or {})
    c.data.update(data or {})
    c.optimizer.update(optimizer or {})
    c.parallel.update(parallel or {})
    c.precision.update(precision or {})
    c.train.update(train)
    return c


_TRACED: list[str] = []
monitoring.register_event_duration_secs_listener(
    lambda event, duration, **kw: _TRACED.append(kw.get("fun_name", "")) if event.endswith("jaxpr_trace_duration")
    else None)


def traces_of(name: str, fn):
    """(fn(), number of times a function named ``name`` was traced for jit while it ran)."""
    start = len(_TRACED)
    out = fn()
    return out, sum(1 for f in _TRACED[start:] if f == name)
