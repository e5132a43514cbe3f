"""The clock task's objectives: exact decoding of the periodic targets, hour/minute consistency, loss zero
at the target, and the report's two-head loss weighting."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.train import clock_task


def _angles(hour, minute):
    t = (np.asarray(hour) % 12) * 60 + np.asarray(minute)
    return jnp.asarray(np.stack([np.cos(2 * np.pi * t / 720), np.sin(2 * np.pi * t / 720),
                                 np.cos(2 * np.pi * np.asarray(minute) / 60),
                                 np.sin(2 * np.pi * np.asarray(minute) / 60)], -1), jnp.float32)


def test_periodic_decoding_is_exact_for_all_720_times():
    hour, minute = np.divmod(np.arange(720), 60)
    h, m = clock_task.decode_periodic({"angles": _angles(hour, minute)})
    np.testing.assert_array_equal(h, hour)
    np.testing.assert_array_equal(m, minute)


def test_hour_follows_the_minute_it_is_paired_with():
    # The 720-minute angle says "about 4:00" (3:59.6), the minute hand says 59: the reading is 3:59, not 4:59.
    a = np.array(_angles([3], [59]))
    t = 239.6
    a[0, :2] = [np.cos(2 * np.pi * t / 720), np.sin(2 * np.pi * t / 720)]
    h, m = clock_task.decode_periodic({"angles": jnp.asarray(a)})
    assert (int(h[0]), int(m[0])) == (3, 59)


def test_periodic_loss_is_zero_at_target_and_metrics_perfect():
    hour, minute = jnp.array([0, 3, 11]), jnp.array([0, 59, 1])
    loss, metrics = clock_task.periodic_objective({"angles": _angles(hour, minute)}, {"hour": hour, "minute": minute})
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)
    np.testing.assert_array_equal(metrics["clock_error_min"], 0.0)


def test_heads_loss_weights_six_to_four():
    hour, minute = jnp.array([2]), jnp.array([30])
    out = {"hour": jnp.zeros((1, 12)), "minute": jnp.zeros((1, 60))}
    loss, metrics = clock_task.heads_objective(out, {"hour": hour, "minute": minute})
    assert float(loss[0]) == pytest.approx(0.6 * np.log(12) + 0.4 * np.log(60), rel=1e-6)
    out["hour"] = out["hour"].at[0, 2].set(10.0)
    out["minute"] = out["minute"].at[0, 31].set(10.0)
    _, metrics = clock_task.heads_objective(out, {"hour": hour, "minute": minute})
    assert float(metrics["clock_error_min"][0]) == 1.0 and float(metrics["minute_within_1"][0]) == 1.0
