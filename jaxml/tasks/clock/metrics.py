"""Clock-reading metrics, per example, as jnp functions (a training loop mask-averages them).

Times live on the 12-hour circle of 720 minutes: ``t = (hour mod 12) * 60 + minute``. The
common-sense error between two readings is the shorter way round that circle,

    err = min(|t1 - t2| mod 720, 720 - |t1 - t2| mod 720)      in [0, 360] minutes,

so 3:59 vs 4:01 is 2, 11:59 vs 0:01 is 2, 12:00 vs 0:00 is 0 and 0:00 vs 6:00 is 360 (chance
level for uniform guesses is 180). Minutes alone are compared on the 60-minute circle the same
way (:func:`minute_distance`): 59 vs 1 is 2. Inputs may be integers (argmax of class heads) or
floats (periodic heads); results are float32. :func:`clock_error_minutes` and
:func:`clock_metrics` insist on four arrays of one shape (a mismatch is a bug, not a broadcast).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

MINUTES_PER_CYCLE = 720.0


def _check_same_shape(name: str, **arrays) -> None:
    shapes = {k: jnp.shape(v) for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{name}: arguments must have the same shape, got {shapes}")


def time_in_minutes(hour: jax.Array, minute: jax.Array) -> jax.Array:
    """Position on the 720-minute circle: (hour mod 12) * 60 + minute, as float32."""
    hour = jnp.asarray(hour, jnp.float32)
    minute = jnp.asarray(minute, jnp.float32)
    return jnp.mod(hour, 12.0) * 60.0 + minute


def circular_distance(a: jax.Array, b: jax.Array, period: float) -> jax.Array:
    """Shorter distance between a and b on a circle of circumference ``period``: in [0, period/2]."""
    d = jnp.mod(jnp.abs(jnp.asarray(a, jnp.float32) - jnp.asarray(b, jnp.float32)), period)
    return jnp.minimum(d, period - d)


def clock_error_minutes(pred_hour, pred_minute, true_hour, true_minute) -> jax.Array:
    """Common-sense error in minutes, f32 per example, in [0, 360]."""
    _check_same_shape("clock_error_minutes", pred_hour=pred_hour, pred_minute=pred_minute,
                      true_hour=true_hour, true_minute=true_minute)
    return circular_distance(time_in_minutes(pred_hour, pred_minute),
                             time_in_minutes(true_hour, true_minute), MINUTES_PER_CYCLE)


def minute_distance(pred_minute, true_minute) -> jax.Array:
    """Minute-hand error on the 60-minute circle, f32 per example, in [0, 30]."""
    return circular_distance(pred_minute, true_minute, 60.0)


def hour_correct(pred_hour, true_hour) -> jax.Array:
    """1.0 where the hours agree modulo 12 (12 == 0), else 0.0."""
    return (jnp.mod(jnp.asarray(pred_hour), 12) == jnp.mod(jnp.asarray(true_hour), 12)).astype(jnp.float32)


def clock_metrics(pred_hour, pred_minute, true_hour, true_minute) -> dict[str, jax.Array]:
    """All per-example clock metrics, f32[...] each:

    clock_error_min   common-sense error on the 720-minute circle
    hour_accuracy     hour right (mod 12)
    minute_accuracy   minute exactly right
    minute_within_1   minute within +-1 on the 60-minute circle
    minute_within_5   minute within +-5 on the 60-minute circle
    """
    err = clock_error_minutes(pred_hour, pred_minute, true_hour, true_minute)
    md = minute_distance(pred_minute, true_minute)
    return {
        "clock_error_min": err,
        "hour_accuracy": hour_correct(pred_hour, true_hour),
        "minute_accuracy": (md < 0.5).astype(jnp.float32),
        "minute_within_1": (md <= 1.0).astype(jnp.float32),
        "minute_within_5": (md <= 5.0).astype(jnp.float32),
    }
