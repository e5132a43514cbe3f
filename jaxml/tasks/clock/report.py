"""The clock task's pictures: a PNG grid of clocks titled with their true (and predicted) times, and the
``clock_predictions`` end-of-run report that draws one for 24 test clocks and 12 independent ones (6 turned,
6 upright; independent.py), each shown as rendered — the pixels before the run's preprocessing."""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.tasks.clock.builder import independent_arrays, raw_arrays, train_style
from jaxml.tasks.clock.objectives import DECODERS
from jaxml.tasks.clock.preprocessing import preprocess
from jaxml.train import reports


def clock_text(h, m) -> str:
    """The time as H:MM on the 12-hour dial (hours 0 and 12 read 12)."""
    h = int(h) % 12
    return f"{12 if h == 0 else h}:{int(m):02d}"


def save_sample_grid(path: str, images, hours, minutes, predicted: Sequence[Any] | None = None,
                     cols: int = 6, captions: Sequence[str] | None = None) -> None:
    """Writes a PNG grid of clocks titled with the true time (and ``pred`` time, red when wrong).

    images: [n, 150, 150] or [n, 150, 150, 1], uint8 or float in [0, 1] (pixels as rendered: normalised
    inputs are refused); predicted: None or a pair (hours, minutes) of length-n arrays; captions: None or n
    strings put above each title. Uses matplotlib's Agg canvas (no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must be [n, H, W] or [n, H, W, 1], got shape {images.shape}")
    n = images.shape[0]
    if images.dtype != np.uint8 and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(f"float images must be pixels in [0, 1], got [{images.min():.3g}, {images.max():.3g}]: "
                         "pass the rendered clocks, not the normalised model inputs")
    if captions is not None and len(captions) != n:
        raise ValueError(f"captions must be {n} strings, got {len(captions)}")
    hours, minutes = np.asarray(hours), np.asarray(minutes)
    if hours.shape != (n,) or minutes.shape != (n,):
        raise ValueError(f"hours {hours.shape} and minutes {minutes.shape} must both be ({n},)")
    if predicted is not None:
        ph, pm = (np.asarray(a) for a in predicted)
        if ph.shape != (n,) or pm.shape != (n,):
            raise ValueError(f"predicted hours {ph.shape} / minutes {pm.shape} must both be ({n},)")
    vmax = 255 if images.dtype == np.uint8 else 1.0
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.9 * cols, 2.1 * rows))
    FigureCanvasAgg(fig)
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=vmax)
        title, color = f"true {clock_text(hours[i], minutes[i])}", "black"
        if captions is not None:
            title = f"{captions[i]}\n{title}"
        if predicted is not None:
            title += f"\npred {clock_text(ph[i], pm[i])}"
            if int(ph[i]) % 12 != int(hours[i]) % 12 or int(pm[i]) != int(minutes[i]):
                color = "red"
        ax.set_title(title, fontsize=9, color=color)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=80)


def grid_clocks(config, n_test: int = 24, n_independent: int = 6) -> dict:
    """The clocks the ``clock_predictions`` grid shows: the run's first ``n_test`` test clocks (the same as its
    "test" split's, rendered again: a smaller n is a prefix) and ``n_independent`` turned and upright clocks of
    the independent renderer. {"images": uint8[n, 150, 150] as rendered, "x": the model inputs (preprocessed),
    "hour", "minute", "captions"}."""
    test = raw_arrays(config, train_style(config), "test", n_test)
    parts = [(test["x"], test["hour"], test["minute"], ["test"] * n_test)]
    for which in ("turned", "upright") if n_independent else ():
        ind = independent_arrays(config, which, n_independent)
        parts.append((ind["images"].astype(np.float32)[..., None] / 255.0, ind["hour"], ind["minute"],
                      [f"independent {which}"] * n_independent))
    pixels = np.concatenate([p[0] for p in parts])
    return {"images": np.round(pixels[..., 0] * 255.0).astype(np.uint8), "x": np.asarray(preprocess(config)(pixels)),
            "hour": np.concatenate([p[1] for p in parts]), "minute": np.concatenate([p[2] for p in parts]),
            "captions": sum((p[3] for p in parts), [])}


def sample_grid_report(ctx: reports.Context) -> None:
    """``clock_predictions.png``: 24 test clocks and 12 independent ones (:func:`grid_clocks`), shown as
    rendered, with true and predicted times (wrong ones in red)."""
    if jax.process_index() != 0:
        return
    clocks = grid_clocks(ctx.config, min(24, len(ctx.splits.eval["test"]["hour"])))
    out = reports.predict(ctx, clocks["x"])
    decode = next(DECODERS[head] for head in DECODERS if head in out)
    hour, minute = decode(jax.tree.map(jnp.asarray, out))
    save_sample_grid(os.path.join(ctx.workdir, "clock_predictions.png"), clocks["images"], clocks["hour"],
                     clocks["minute"], predicted=(np.asarray(hour), np.asarray(minute)), captions=clocks["captions"])
