"""The clock task's pictures: a PNG grid of clocks titled with their true (and predicted) times, and the
``clock_predictions`` end-of-run report that draws one for 24 test clocks."""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.tasks.clock.objectives import DECODERS
from jaxml.train import reports


def _fmt(h, m) -> str:
    h = int(h) % 12
    return f"{12 if h == 0 else h}:{int(m):02d}"


def save_sample_grid(path: str, images, hours, minutes, predicted: Sequence[Any] | None = None,
                     cols: int = 6) -> None:
    """Writes a PNG grid of clocks titled with the true time (and ``pred`` time, red when wrong).

    images: [n, 150, 150] or [n, 150, 150, 1], uint8 or float in [0, 1]; predicted: None or a
    pair (hours, minutes) of length-n arrays. Uses matplotlib's Agg canvas (no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must be [n, H, W] or [n, H, W, 1], got shape {images.shape}")
    n = images.shape[0]
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
        title, color = f"true {_fmt(hours[i], minutes[i])}", "black"
        if predicted is not None:
            title += f"\npred {_fmt(ph[i], pm[i])}"
            if int(ph[i]) % 12 != int(hours[i]) % 12 or int(pm[i]) != int(minutes[i]):
                color = "red"
        ax.set_title(title, fontsize=9, color=color)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=80)


def sample_grid_report(ctx: reports.Context) -> None:
    """``clock_predictions.png``: 24 test images with true and predicted times (wrong ones in red)."""
    if jax.process_index() != 0:
        return
    arrays = ctx.splits.eval["test"]
    x = arrays["x"][:24]
    out = reports.predict(ctx, x)
    decode = next(DECODERS[head] for head in DECODERS if head in out)
    hour, minute = decode(jax.tree.map(jnp.asarray, out))
    save_sample_grid(os.path.join(ctx.workdir, "clock_predictions.png"), (x[..., 0] * 255).astype(np.uint8),
                     arrays["hour"][:24], arrays["minute"][:24], predicted=(np.asarray(hour), np.asarray(minute)))
