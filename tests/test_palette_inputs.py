"""Palette inputs (``jaxml.kmeans.palette``): transparent pixels are skipped, out-of-range values are named, and
a transparent image keeps its alpha channel when loaded."""
import numpy as np
import pytest

from jaxml.kmeans import palette as pal


def test_palette_skips_transparent_pixels_and_checks_values():
    """RGBA: fully transparent pixels (RGB often black) are not a palette colour; half-transparent ones count in
    full; values outside [0, 255] are named with the first bad pixel."""
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[:10] = (200, 30, 30, 255)
    rgba[10:20] = (20, 120, 220, 128)  # half transparent: still a visible colour, counted in full
    rgba[20:] = (0, 0, 0, 0)           # transparent: skipped
    p = pal.palette(rgba, k=2, n_init=1)
    assert sorted(p.lines()) == ["#1478dc  0.5000", "#c81e1e  0.5000"]   # equal shares: either order
    assert int(np.asarray(p.fit.sizes).sum()) == 1000
    with pytest.raises(ValueError, match="every pixel is fully transparent"):
        pal.palette(np.zeros((4, 4, 4), np.uint8), k=1)
    with pytest.raises(ValueError, match=r"palette: pixels has 1 pixels with values outside \[0, 255\] or NaN "
                                         r"\(first: pixel 3: \[300.0, 0.0, 0.0\]\)"):
        pal.palette(np.where(np.arange(12)[:, None] == 3, [300.0, 0, 0], [10.0, 20, 30]), k=1)


def test_load_pixels_keeps_alpha_of_transparent_images(tmp_path):
    from PIL import Image
    img = np.zeros((10, 10, 4), np.uint8)
    img[:5] = (10, 200, 30, 255)
    Image.fromarray(img, "RGBA").save(tmp_path / "t.png")
    px = pal.load_pixels(str(tmp_path / "t.png"))
    assert px.shape == (10, 10, 4)
    np.testing.assert_array_equal(px[..., 3].sum(), 50 * 255)
    Image.fromarray(img[..., :3]).save(tmp_path / "o.png")
    assert pal.load_pixels(str(tmp_path / "o.png")).shape == (10, 10, 3)
