"""End-of-run reports named in ``config.reports``: each takes a ``Context`` and prints or writes files
into the workdir (only on process 0). Tasks register their own (e.g. the clock task's sample grid)."""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np


class Context(NamedTuple):
    config: Any
    workdir: str
    model: Any
    state: Any      # host copy of the final TrainState
    splits: Any     # pipeline.Splits
    final: dict     # {split: final metrics record}
    log: Any        # MetricsLog


def predict(ctx: Context, x: np.ndarray, batch_size: int = 1000):
    """Model outputs (train=False) for host array x, batched."""
    fn = jax.jit(lambda p, s, xb: ctx.model.apply(p, xb, state=s, train=False)[0])
    outs = [jax.device_get(fn(ctx.state.params, ctx.state.model_state, x[i:i + batch_size]))
            for i in range(0, len(x), batch_size)]
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


def zhou_predictions(ctx: Context) -> None:
    """The tutorial's closing lines: ``Emily: 0.9xx`` and ``Frank: 0.0xx``."""
    from jaxml.data.toy import ZHOU_QUERIES
    x = np.array(list(ZHOU_QUERIES.values()), np.float32)
    for name, p in zip(ZHOU_QUERIES, predict(ctx, x)):
        print(f"{name}: {p:.3f}")


def curves(ctx: Context) -> None:
    """``curves.png``: loss and accuracy (when logged) per step, train and every eval split."""
    if jax.process_index() != 0:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from jaxml.train.metrics_log import read_records
    records = read_records(ctx.workdir)
    keys = [k for k in ("loss", "accuracy", "mse", "clock_error_min") if any(k in r for r in records)]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for split in dict.fromkeys(r["split"] for r in records):
            pts = [(r["step"], r[key]) for r in records if r["split"] == split and key in r]
            if pts:
                ax.plot(*zip(*pts), marker="." if len(pts) < 50 else None, label=split)
        ax.set_xlabel("step"), ax.set_title(key), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(ctx.workdir, "curves.png"), dpi=100)
    plt.close(fig)


def confusion_matrix(ctx: Context) -> None:
    """``confusion_matrix.png`` (and .csv) on the last final split (the test set when present)."""
    if jax.process_index() != 0:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from jaxml.metrics import confusion_matrix as cm_fn
    split = list(ctx.final)[-1]
    arrays = ctx.splits.eval[split]
    logits = predict(ctx, arrays["x"])
    n = logits.shape[-1]
    cm = cm_fn(arrays["y"], logits.argmax(-1), n)
    np.savetxt(os.path.join(ctx.workdir, "confusion_matrix.csv"), cm, fmt="%d", delimiter=",")
    names = ctx.splits.info.get("class_names") or [str(i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=45, ha="right"), ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(f"confusion matrix ({split})")
    fig.colorbar(im), fig.tight_layout()
    fig.savefig(os.path.join(ctx.workdir, "confusion_matrix.png"), dpi=100)
    plt.close(fig)


def clock_predictions(ctx: Context) -> None:
    from jaxml.train import clock_task
    clock_task.sample_grid_report(ctx)


REPORTS: dict[str, Callable[[Context], None]] = {
    "zhou_predictions": zhou_predictions, "curves": curves, "confusion_matrix": confusion_matrix,
    "clock_predictions": clock_predictions}
