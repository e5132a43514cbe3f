"""The fixed input filters: Gaussian blur == scipy.ndimage, and the noise reduction it is used for."""
import numpy as np
import pytest
import scipy.ndimage

from jaxml.data import filters


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.25, 2.0])
def test_gaussian_blur_matches_scipy_nearest_mode(sigma):
    x = np.random.default_rng(0).uniform(size=(3, 40, 50, 2)).astype(np.float32)
    ref = scipy.ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(np.asarray(filters.gaussian_blur(x, sigma)), ref, atol=1e-6)


def test_gaussian_blur_keeps_constants_and_cuts_white_noise_by_the_formula():
    const = np.full((2, 30, 30, 1), 0.37, np.float32)
    np.testing.assert_allclose(np.asarray(filters.gaussian_blur(const, 1.25)), const, atol=1e-6)
    noise = np.random.default_rng(1).normal(size=(4, 150, 150, 1)).astype(np.float32)
    for sigma in (1.0, 1.25, 2.0):
        inner = np.asarray(filters.gaussian_blur(noise, sigma))[:, 10:-10, 10:-10]
        # sum of squared taps of the 2-D Gaussian ~ 1 / (4 pi sigma^2)
        assert inner.std() == pytest.approx(1.0 / (2.0 * np.sqrt(np.pi) * sigma), rel=0.05)
    assert filters.gaussian_blur(noise, 0) is noise


def test_gaussian_blur_bad_input_named():
    x = np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="sigma must be a number >= 0"):
        filters.gaussian_blur(x, -1.0)
    with pytest.raises(ValueError, match=r"\[\.\.\., H, W, C\], got shape \(8, 8\)"):
        filters.gaussian_blur(x[0, :, :, 0], 1.0)
    with pytest.raises(ValueError, match="sigma must be a number > 0"):
        filters.gaussian_kernel(0.0)
