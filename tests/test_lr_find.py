"""The LR range test: the geometric schedule, the smoothers and the steepest-descent suggestion against
hand-made curves, and launch/lr_find.py end to end on blobs (a sensible suggestion, a stop at
divergence, the PNG and JSON written)."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxml.tune import lr_range

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_schedule_and_smoothers_by_hand():
    lrs = lr_range.lr_schedule(1e-5, 1.0, 11)
    np.testing.assert_allclose(lrs, 10.0 ** np.linspace(-5, 0, 11), rtol=1e-12)
    # EMA, beta 0.5: a = 0.5 a + 0.5 L -> 2, 2, 1.5; S = a / (1 - 0.5^(t+1))
    np.testing.assert_allclose(lr_range.smooth([4.0, 2.0, 1.0], 0.5), [2.0 / 0.5, 2.0 / 0.75, 1.5 / 0.875])
    np.testing.assert_allclose(lr_range.smooth_zero_lag(np.full(7, 3.0), 2.0), 3.0)   # an average stays one
    ramp = np.arange(60.0)
    z = lr_range.smooth_zero_lag(ramp, 3.0)
    np.testing.assert_allclose(z[20:40], ramp[20:40], atol=1e-6)  # symmetric weights: no lag on a line
    assert z[0] > ramp[0] and z[-1] < ramp[-1]                    # one-sided at the ends
    with pytest.raises(ValueError, match="0 < min_lr < max_lr"):
        lr_range.lr_schedule(1.0, 1e-3, 100)
    with pytest.raises(ValueError, match="steps >= 10"):
        lr_range.lr_schedule(1e-5, 1.0, 5)


def test_suggestion_is_the_steepest_drop_of_a_noisy_curve():
    """loss = 2 - tanh(log10(lr) + 2.5) + noise falls fastest at lr = 10^-2.5; the noisy flat start
    must not win."""
    lrs = lr_range.lr_schedule(1e-6, 10.0, 300)
    rng = np.random.default_rng(0)
    loss = 2 - np.tanh(np.log10(lrs) + 2.5) + 0.3 * rng.normal(size=lrs.size)
    s = lr_range.suggest(lrs, lr_range.smooth_zero_lag(loss, 15))
    assert abs(math.log10(s) + 2.5) < 0.25
    with pytest.raises(ValueError, match="usable points"):
        lr_range.suggest(lrs[:2], loss[:2])


@pytest.mark.slow
def test_lr_find_on_blobs_suggests_a_sensible_lr_and_writes_png(tmp_path):
    """SGD on blobs up to lr 1e4: the run stops at divergence, and the suggestion lies where the loss
    actually falls (1e-3 .. 0.3; blobs_mlp trains with 0.05)."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "lr_find.py"),
                        f"--config={os.path.join(ROOT, 'configs', 'blobs_mlp.py')}", f"--workdir={tmp_path}",
                        "--max_lr=1e4", "--steps=150", "--config.model.batch_norm=False"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    suggested = float(r.stdout.strip().splitlines()[-1].removeprefix("suggested lr: "))
    assert 1e-3 < suggested < 0.3
    with open(tmp_path / "lr_find.json") as f:
        res = json.load(f)
    assert res["suggested_lr"] == pytest.approx(suggested, rel=1e-5)
    assert res["diverged"] and res["lrs"][-1] < 1e4 and len(res["lrs"]) < 150
    lrs, losses = np.array(res["lrs"]), np.array(res["losses"])
    i = int(np.argmin(np.abs(lrs - suggested)))
    assert losses[max(0, i - 15):i].mean() > losses[i:i + 15].mean() + 0.2    # the loss is falling there
    assert losses[:10].mean() > 2 * losses.min()
    with Image.open(tmp_path / "lr_find.png") as im:
        assert im.format == "PNG" and im.size[0] >= 400


@pytest.mark.slow
def test_lr_find_bad_range_exits_nonzero(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "lr_find.py"),
                        f"--config={os.path.join(ROOT, 'configs', 'blobs_mlp.py')}", f"--workdir={tmp_path}",
                        "--min_lr=1", "--max_lr=0.1"], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "need 0 < min_lr < max_lr" in r.stderr.strip().splitlines()[-1]
