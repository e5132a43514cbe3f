"""The "tell the time" task: data builder, objectives and report, registered with the loop.

Objectives (``config.objective``):
- ``clock_heads`` — the report's formulation: an hour head (12 logits) and a minute head (60 logits),
  loss = w_h * CE(hour) + w_m * CE(minute) with weights (0.6, 0.4) from ``config.clock.head_weights``.
  Read-out: argmax of each head.
- ``clock_periodic`` — both hands as points on circles: a head "angles" with 4 outputs regressed to
  (cos, sin) of the time on the 720-minute circle, 2*pi*t/720, and of the minute on the 60-minute circle,
  2*pi*m/60 (squared error). The minute is read from the second angle; the hour is the h in 0..11 whose
  h*60 + minute is closest on the 720-minute circle to the first angle, so the hour head can never
  disagree with the minute it is paired with (3:59 is not read as 4:59) and neighbouring times get
  neighbouring targets (no 59 -> 0 cliff in the loss).
- ``clock_absolute`` — every target visible on its own: (cos, sin) of the hour hand, the minute hand and
  the 12-o'clock marker as directions in the image (clockwise from up; a hand at clock angle theta points
  at theta + rotation), 6 outputs, squared error. With the whole clock rotated at random, a hand's image
  direction alone says nothing about the time — only its angle to the marker does — so the periodic
  targets have no first-order signal in any single feature, and the periodic model sat at chance (loss 2.0
  = predicting zeros) for 1,900 steps; here each target is a direction a convolution can see. Read-out:
  the hands' angles minus the marker's, decoded as ``clock_periodic``. Training uses the rendered rotation
  as a label (the renderer knows it; a photo set would need it annotated); reading needs only the image.
Every objective reports the per-example ``clock_error_min`` (common-sense error on the 720-minute circle),
``hour_accuracy``, ``minute_accuracy``, ``minute_within_1`` and ``minute_within_5``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import clock_metrics, losses
from jaxml.data import clock, filters, pipeline
from jaxml.models import views
from jaxml.train import config as config_lib

TWO_PI = 2.0 * np.pi
HEAD_WEIGHTS = (0.6, 0.4)


def decode_heads(outputs):
    return jnp.argmax(outputs["hour"], -1), jnp.argmax(outputs["minute"], -1)


def decode_periodic(outputs):
    """outputs["angles"] f32[b, 4] -> (hour int[b], minute int[b])."""
    a = outputs["angles"]
    t720 = jnp.mod(jnp.arctan2(a[:, 1], a[:, 0]) / TWO_PI * 720.0, 720.0)
    minute = jnp.mod(jnp.round(jnp.mod(jnp.arctan2(a[:, 3], a[:, 2]) / TWO_PI * 60.0, 60.0)), 60).astype(jnp.int32)
    candidates = jnp.arange(12)[None, :] * 60.0 + minute[:, None]                         # [b, 12]
    hour = jnp.argmin(clock_metrics.circular_distance(candidates, t720[:, None], 720.0), axis=-1)
    return hour, minute


def decode_absolute(outputs):
    """outputs["abs_angles"] f32[b, 6] = (cos, sin) of hour hand, minute hand, marker -> (hour, minute)."""
    a = outputs["abs_angles"]
    hand_h, hand_m, marker = (jnp.arctan2(a[:, 2 * i + 1], a[:, 2 * i]) for i in range(3))
    th, tm = hand_h - marker, hand_m - marker
    return decode_periodic({"angles": jnp.stack([jnp.cos(th), jnp.sin(th), jnp.cos(tm), jnp.sin(tm)], -1)})


def _metrics(hour, minute, batch):
    return clock_metrics.clock_metrics(hour, minute, batch["hour"], batch["minute"])


def heads_objective(outputs, batch, weights=HEAD_WEIGHTS):
    loss = (weights[0] * losses.softmax_cross_entropy(outputs["hour"], batch["hour"])
            + weights[1] * losses.softmax_cross_entropy(outputs["minute"], batch["minute"]))
    metrics = _metrics(*decode_heads(outputs), batch)
    metrics["loss"] = loss
    return loss, metrics


def periodic_objective(outputs, batch):
    t = clock_metrics.time_in_minutes(batch["hour"], batch["minute"])
    m = batch["minute"].astype(jnp.float32)
    target = jnp.stack([jnp.cos(TWO_PI * t / 720), jnp.sin(TWO_PI * t / 720),
                        jnp.cos(TWO_PI * m / 60), jnp.sin(TWO_PI * m / 60)], axis=-1)
    loss = jnp.sum(jnp.square(outputs["angles"] - target), axis=-1)
    metrics = _metrics(*decode_periodic(outputs), batch)
    metrics["loss"] = loss
    return loss, metrics


def absolute_objective(outputs, batch):
    t = clock_metrics.time_in_minutes(batch["hour"], batch["minute"])
    rot = batch["rotation"]
    angles = (TWO_PI * t / 720 + rot, TWO_PI * batch["minute"].astype(jnp.float32) / 60 + rot, rot)
    target = jnp.stack([f(a) for a in angles for f in (jnp.cos, jnp.sin)], axis=-1)
    loss = jnp.sum(jnp.square(outputs["abs_angles"] - target), axis=-1)
    metrics = _metrics(*decode_absolute(outputs), batch)
    metrics["loss"] = loss
    return loss, metrics


def _time_circles_back(y, k, mirror):
    """"angles" on g . x -> x's frame: the time does not turn with the picture; a mirror reads t as 720 - t and m
    as 60 - m, i.e. negates both sines."""
    del k
    return y * jnp.array([1.0, -1.0, 1.0, -1.0], y.dtype) if mirror else y


def _logits_back(head):
    def back(y, k, mirror):
        """Logits on g . x -> x's frame, as log-probabilities (their mean is a geometric mean of probabilities).
        Rotations leave the time alone; a mirror maps 3:10 to 8:50 — the hour depends on the minute, so no
        per-head map exists."""
        del k
        if mirror:
            raise ValueError(f"view averaging: the {head!r} head has no mirror image (the mirrored hour depends on "
                             "the minute); use config.model.test_views=4 (rotations only) for clock_heads")
        return jax.nn.log_softmax(y, axis=-1)
    return back


# How each clock head's outputs on a D4 view g . x map back to x's frame (jaxml/models/views.py).
VIEW_MAPS = {"abs_angles": views.directions_back, "angles": _time_circles_back,
             "hour": _logits_back("hour"), "minute": _logits_back("minute")}

DECODERS = {"hour": decode_heads, "angles": decode_periodic, "abs_angles": decode_absolute}  # by output head


def train_style(config) -> clock.ClockStyle:
    """The style the run trains on: ``config.data.train_style`` (a partial ClockStyle) or TRAIN_STYLE."""
    d = config.data
    return clock.ClockStyle.from_dict(d.train_style.to_dict()) if d.get("train_style") else clock.TRAIN_STYLE


NORMALIZE = ("none", "detrend")


def preprocess(config):
    """The run's image preprocessing x -> x, in this order: a fixed Gaussian blur of ``data.preblur_sigma``
    pixels (0 = none; :func:`filters.gaussian_blur` — cuts pixel noise to ~1 / (3.5 sigma) of its std and makes
    differently blurred clocks alike), the report's contrast curve when ``data.contrast_gamma`` != 1, then
    ``data.normalize``: "none", or "detrend" (per image: remove the best-fit brightness plane and scale to unit
    variance, :func:`clock.detrend_standardize` — blind to contrast and to linear lighting ramps)."""
    gamma = float(config.data.get("contrast_gamma", 1.0))
    normalize = config.data.get("normalize", "none")
    if normalize not in NORMALIZE:
        raise config_lib.ConfigError(f"config.data.normalize must be one of {NORMALIZE}, got {normalize!r}")
    sigma = config.data.get("preblur_sigma", 0.0)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not 0.0 <= sigma <= 5.0:
        raise config_lib.ConfigError(f"config.data.preblur_sigma must be a number of pixels in [0, 5], got {sigma!r}")
    blur = (lambda x: filters.gaussian_blur(x, float(sigma))) if sigma else (lambda x: x)
    curve = (lambda x: clock.contrast_curve(blur(x), gamma)) if gamma != 1.0 else blur
    if normalize == "detrend":
        return lambda x: clock.detrend_standardize(curve(x))
    return curve


def rendered_arrays(config, style: clock.ClockStyle, split: str, n: int | None = None) -> dict:
    """``n`` (default ``data.test_size``) rendered clocks of ``style`` from the ``split`` stream of the run's
    data seed, preprocessed as the run's inputs: {"x", "hour", "minute", "rotation"}."""
    d = config.data
    arrays = clock.clock_dataset(d.get("data_seed", 0), int(d.test_size if n is None else n), style, split)
    return {**arrays, "x": np.asarray(preprocess(config)(arrays["x"]))}


def build_data(config) -> pipeline.Splits:
    """Training batches rendered on the fly from fold_in(seed, step) (``train_size`` = 0: infinite data)
    or drawn from a fixed rendered set of ``train_size`` images (the report: 14,400); evaluation on
    ``test_size`` held-out images of the training styles ("test") and of the excluded styles ("heldout")."""
    d = config.data
    style, prep = train_style(config), preprocess(config)
    eval_splits = {"test": rendered_arrays(config, style, "test"),
                   "heldout": rendered_arrays(config, clock.HELDOUT_STYLE, "heldout")}
    if int(d.get("train_size", 0)) > 0:
        arrays = rendered_arrays(config, style, "train", int(d.train_size))
        train = pipeline.ArraySource(arrays, d.batch_size, seed=config.seed)
    else:
        # Two programs, not one: compiled together, XLA:CPU fuses the renderer into the per-image reductions
        # of "detrend" and redraws every clock once per reduction (64 clocks on 2 cores: 40 ms in one program
        # vs 13 ms in two without the pre-blur, 18 vs 15 ms with it; bench/clock_preblur.py).
        render = jax.jit(lambda key, n: clock.render_batch(key, n, style) + (clock.rotations(key, n, style),),
                         static_argnums=1)
        prep_pixels = jax.jit(lambda images: prep(images.astype(jnp.float32)[..., None] / 255.0))

        def make_batch(key, n):
            images, hour, minute, rotation = render(key, n)
            return {"x": prep_pixels(images), "hour": hour, "minute": minute, "rotation": rotation}
        train = pipeline.GeneratedSource(make_batch, d.batch_size, seed=config.seed, jit=False,
                                         steps_per_epoch=int(d.get("steps_per_epoch", 600)))
    return pipeline.Splits(train=train, eval=eval_splits, input_shape=(clock.CANVAS, clock.CANVAS, 1))


def sample_grid_report(ctx) -> None:
    """``clock_predictions.png``: 24 test images with true and predicted times (wrong ones in red)."""
    if jax.process_index() != 0:
        return
    import os
    from jaxml.train import reports
    arrays = ctx.splits.eval["test"]
    x = arrays["x"][:24]
    out = reports.predict(ctx, x)
    decode = next(DECODERS[head] for head in DECODERS if head in out)
    hour, minute = decode(jax.tree.map(jnp.asarray, out))
    clock.save_sample_grid(os.path.join(ctx.workdir, "clock_predictions.png"), (x[..., 0] * 255).astype(np.uint8),
                           arrays["hour"][:24], arrays["minute"][:24], predicted=(np.asarray(hour), np.asarray(minute)))
