"""End-of-run reports named in ``config.reports``: each takes a ``Context`` and prints or writes files
into the workdir (only on process 0). Tasks add their own with ``register(name, fn)``."""
from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from jaxml import metrics
from jaxml.train.metrics_log import read_records


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


# The metrics ``curves`` plots when a run logs them; tasks add theirs with ``plot_metric``.
CURVE_METRICS: list[str] = ["loss", "accuracy", "mse"]


def plot_metric(name: str) -> None:
    """Let ``curves`` plot the metric ``name`` too (a task does this for its headline metric)."""
    if name not in CURVE_METRICS:
        CURVE_METRICS.append(name)


def curves(ctx: Context) -> None:
    """``curves.png``: loss and accuracy (when logged) per step, train and every eval split."""
    if jax.process_index() != 0:
        return
    curves_figure(read_records(ctx.workdir)).savefig(os.path.join(ctx.workdir, "curves.png"), dpi=100)


# Each split's line colour, the same in every plot (matplotlib's cycle colours); other splits take the next ones.
SPLIT_COLOURS = {"train": "C0", "test": "C1", "validation": "C2", "eval": "C3"}


def split_colours(splits) -> dict:
    """{split: colour} for ``splits``: ``SPLIT_COLOURS`` where named, then C4, C5, ... in sorted order."""
    splits = set(splits)
    others = sorted(s for s in splits if s not in SPLIT_COLOURS)
    return {**{s: c for s, c in SPLIT_COLOURS.items() if s in splits}, **{s: f"C{4 + i}" for i, s in enumerate(others)}}


def curves_figure(records: list, metrics=None):
    """A matplotlib ``Figure``: per metric (default: the ``CURVE_METRICS`` the records hold) value vs step, a line
    per split in its fixed colour (``SPLIT_COLOURS``), from metric records ({"step", "split", metric: value}).
    Built without pyplot, so it leaves the backend alone; a notebook shows it inline when it is a cell's value."""
    from matplotlib.figure import Figure
    keys = list(metrics) if metrics else [k for k in CURVE_METRICS if any(k in r for r in records)]
    if not keys:
        raise ValueError(f"no metric to plot: none of {CURVE_METRICS} is in the records")
    fig = Figure(figsize=(5 * len(keys), 3.6))
    axes = fig.subplots(1, len(keys), squeeze=False)
    colours = split_colours(r["split"] for r in records)
    for ax, key in zip(axes[0], keys):
        for split in dict.fromkeys(r["split"] for r in records):
            pts = [(r["step"], r[key]) for r in records if r["split"] == split and key in r]
            if pts:
                ax.plot(*zip(*pts), marker="." if len(pts) < 50 else None, label=split, color=colours[split])
        ax.set_xlabel("step"), ax.set_title(key), ax.legend(), ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_confusion_matrix(cm: np.ndarray, names, path: str, title: str) -> None:
    """Write the confusion matrix ``cm`` (int[k, k], rows true, columns predicted) as a PNG at ``path`` and as
    CSV beside it (same name, ``.csv``); every run that classifies (the loop, naive Bayes) shares it."""
    np.savetxt(os.path.splitext(path)[0] + ".csv", cm, fmt="%d", delimiter=",")
    confusion_figure(cm, names, title).savefig(path, dpi=100)


def confusion_figure(cm: np.ndarray, names, title: str = "confusion matrix"):
    """A matplotlib ``Figure`` of the confusion matrix ``cm`` (int[k, k], rows true, columns predicted), counts in
    the cells; built without pyplot (a notebook shows it inline as a cell's value)."""
    from matplotlib.figure import Figure
    cm = np.asarray(cm)
    n = len(names)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {n} class names")
    fig = Figure(figsize=(max(4.0, 0.7 * n), max(3.6, 0.6 * n)))
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), names)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7 if n > 4 else 10,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title, fontsize=9)
    fig.colorbar(im), fig.tight_layout()
    return fig


def confusion_matrix(ctx: Context) -> None:
    """``confusion_matrix.png`` (and .csv) on the last final split (the test set when present)."""
    if jax.process_index() != 0:
        return
    split = list(ctx.final)[-1]
    arrays = ctx.splits.eval[split]
    logits = predict(ctx, arrays["x"])
    n = logits.shape[-1]
    cm = metrics.confusion_matrix(arrays["y"], logits.argmax(-1), n)
    names = ctx.splits.info.get("class_names") or [str(i) for i in range(n)]
    save_confusion_matrix(cm, names, os.path.join(ctx.workdir, "confusion_matrix.png"), f"confusion matrix ({split})")


REPORTS: dict[str, Callable[[Context], None]] = {"curves": curves, "confusion_matrix": confusion_matrix}


def register(name: str, report: Callable[[Context], None]) -> None:
    """Add an end-of-run report under ``name`` (a task does this when its package is imported)."""
    REPORTS[name] = report
