"""The clock task's objectives: decoders from model outputs to (hour, minute), three losses, view maps.

Objectives (``config.objective``), each fn(outputs, batch) -> (loss f32[b], {metric: f32[b]}):
- ``clock_heads`` — the report's formulation: an hour head (12 logits) and a minute head (60 logits),
  loss = w_h * CE(hour) + w_m * CE(minute) with weights ``HEAD_WEIGHTS`` = (0.6, 0.4).
  Read-out: argmax of each head.
- ``clock_periodic`` — both hands as points on circles: a head "angles" with 4 outputs regressed to
  (cos, sin) of the time on the 720-minute circle, 2*pi*t/720, and of the minute on the 60-minute circle,
  2*pi*m/60 (squared error). The minute is read from the second angle; the hour is the h in 0..11 whose
  h*60 + minute is closest on the 720-minute circle to the first angle, so the hour head can never
  disagree with the minute it is paired with (3:59 is not read as 4:59) and neighbouring times get
  neighbouring targets (no 59 -> 0 cliff in the loss).
- ``clock_absolute`` — every target visible on its own: (cos, sin) of the hour hand, the minute hand and
  the 12-o'clock marker as directions in the image (clockwise from up; a hand at clock angle theta points
  at theta + rotation), 6 outputs, squared error. Why: with the whole clock rotated at random, a hand's
  image direction alone says nothing about the time — only its angle to the marker does — so the periodic
  targets have no first-order signal in any single feature; here each target is a direction a convolution
  can see. Read-out: the hands' angles minus the marker's, decoded as ``clock_periodic``. Training uses the
  rendered rotation as a label (the renderer knows it; a photo set would need it annotated); reading needs
  only the image.
Every objective reports the per-example ``clock_error_min`` (common-sense error on the 720-minute circle),
``hour_accuracy``, ``minute_accuracy``, ``minute_within_1`` and ``minute_within_5`` (metrics.py).
``VIEW_MAPS`` says how each head's outputs on a rotated or mirrored image map back (jaxml/models/views.py),
which lets ``config.model.test_views`` average over the square's symmetries.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import losses
from jaxml.models import views
from jaxml.tasks.clock import metrics as clock_metrics

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
