"""jaxml.kmeans.palette.thumbnail: an in-memory image shrinks exactly as load_pixels shrinks its file."""
import numpy as np
import pytest
from PIL import Image

from jaxml.kmeans import palette as pal


@pytest.mark.parametrize("channels", [3, 4])
def test_thumbnail_matches_load_pixels(tmp_path, channels):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 130, channels), dtype=np.uint8)
    if channels == 4:
        image[..., 3] = 255
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    small = pal.thumbnail(image, (40, 50))
    assert small.shape == (28, 40, channels)            # 130 x 90 fitted into 40 x 50 keeps 13:9
    np.testing.assert_array_equal(small, pal.load_pixels(str(path), (40, 50)))
    # Nearest neighbour: every output pixel is one of the input's.
    assert {tuple(p) for p in small.reshape(-1, channels)} <= {tuple(p) for p in image.reshape(-1, channels)}
    np.testing.assert_array_equal(pal.thumbnail(image, (500, 500)), image)


def test_thumbnail_rejects_non_images():
    with pytest.raises(ValueError, match=r"thumbnail: pixels must be uint8\[h, w, 3 \| 4\], got float64\[4, 4, 3\]"):
        pal.thumbnail(np.zeros((4, 4, 3)))
