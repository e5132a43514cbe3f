"""Every Pillow mode a user may hand the palette becomes the right 8-bit RGB (issue #32, bad case 6 and item 3).

Each mode is written to a file by Pillow from known values and read back through ``load_pixels``; the expected
pixels come from an independent NumPy conversion of those values (the JFIF YCbCr and CMYK formulas, palette
lookup, 16-bit and float scaling), not from Pillow's converter.
"""
import numpy as np
import pytest
from PIL import Image

from jaxml.kmeans import palette as pal

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 7, 3), dtype=np.uint8)
GREY = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
ALPHA = np.where(RNG.random((6, 7)) < 0.3, 0, RNG.integers(1, 256, (6, 7))).astype(np.uint8)


def grey3(g):
    return np.repeat(np.asarray(g, np.uint8)[..., None], 3, axis=-1)


def image(array, mode):
    """A PIL image of ``mode`` holding ``array``'s bytes as they are."""
    array = np.ascontiguousarray(array)
    return Image.frombytes(mode, (array.shape[1], array.shape[0]), array.tobytes())


def load(img, tmp_path, ext="png", **save):
    path = tmp_path / f"image.{ext}"
    img.save(path, **save)
    return pal.load_pixels(str(path), thumbnail=None)


def test_mode_1(tmp_path):
    bits = GREY > 127
    assert np.array_equal(load(Image.fromarray(bits), tmp_path), grey3(np.where(bits, 255, 0)))


def test_mode_L_and_LA(tmp_path):
    assert np.array_equal(load(image(GREY, "L"), tmp_path), grey3(GREY))
    la = load(image(np.stack([GREY, ALPHA], -1), "LA"), tmp_path)
    assert np.array_equal(la, np.concatenate([grey3(GREY), ALPHA[..., None]], -1))


def test_mode_P_with_transparency(tmp_path):
    table = RNG.integers(0, 256, (16, 3), dtype=np.uint8)
    index = RNG.integers(0, 16, (6, 7), dtype=np.uint8)
    img = image(index, "P")
    img.putpalette(table.reshape(-1).tolist())
    got = load(img, tmp_path, transparency=3)
    expected = np.concatenate([table[index], np.where(index == 3, 0, 255).astype(np.uint8)[..., None]], -1)
    assert np.array_equal(got, expected)
    assert np.array_equal(load(img, tmp_path), table[index])          # without transparency: RGB


@pytest.mark.parametrize("mode", ["I;16", "I;16B"])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path, mode):
    levels = RNG.integers(0, 65536, (6, 7)).astype(np.uint16)
    img = image(levels.astype(">u2" if mode == "I;16B" else "<u2"), mode)
    got = pal.to_rgb(img) if mode == "I;16B" else load(img, tmp_path)
    assert np.array_equal(got, grey3(np.floor(levels.astype(np.float64) * 255 / 65535 + 0.5)))


def test_the_16_bit_png_of_the_issue_gives_three_dark_greys(tmp_path):
    """Bad case 6: levels 0 / 1000 / 2000 of 65535 gave the palette #ffffff 0.667 / #000000 0.333."""
    levels = np.repeat(np.array([0, 1000, 2000], np.uint16), 30).reshape(9, 10)
    path = tmp_path / "grey16.png"
    image(levels, "I;16").save(path)
    p = pal.palette(pal.load_pixels(str(path)), 3, n_init=1)
    assert sorted(p.lines()) == ["#000000  0.3333", "#040404  0.3333", "#080808  0.3333"]


def test_mode_I_reads_the_16_bit_scale_and_refuses_other_values(tmp_path):
    levels = RNG.integers(0, 65536, (6, 7)).astype(np.int32)
    got = load(image(levels, "I"), tmp_path, ext="tif")
    assert np.array_equal(got, grey3(np.floor(levels * 255 / 65535 + 0.5)))
    levels[2, 3] = 70000
    with pytest.raises(ValueError, match=r"mode I pixels must lie in \[0, 65535\]; pixel \(row 2, column 3\) is "
                                         r"70000"):
        load(image(levels, "I"), tmp_path, ext="tif")


def test_mode_F_in_0_1(tmp_path):
    values = RNG.random((6, 7)).astype(np.float32)
    got = load(image(values, "F"), tmp_path, ext="tif")
    assert np.array_equal(got, grey3(np.floor(values.astype(np.float64) * 255 + 0.5)))
    values[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"mode F pixels must lie in \[0, 1\]; pixel \(row 0, column 1\) is nan"):
        pal.to_rgb(image(values, "F"))


def test_rgb_and_rgba(tmp_path):
    assert np.array_equal(load(image(RGB, "RGB"), tmp_path), RGB)
    rgba = np.concatenate([RGB, ALPHA[..., None]], -1)
    assert np.array_equal(load(image(rgba, "RGBA"), tmp_path), rgba)


def test_cmyk_by_the_standard_formula(tmp_path):
    cmyk = RNG.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    got = load(image(cmyk, "CMYK"), tmp_path, ext="tif")
    c = cmyk.astype(np.float64)
    expected = (255 - c[..., :3]) * (255 - c[..., 3:]) / 255
    assert np.abs(got - expected).max() <= 0.5 + 1e-9                 # the rounding of an exact formula


def test_ycbcr_by_the_jfif_formula(tmp_path):
    ycc = RNG.integers(16, 240, (6, 7, 3), dtype=np.uint8).astype(np.float64)
    got = pal.to_rgb(image(ycc.astype(np.uint8), "YCbCr")).astype(np.float64)
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 128, ycc[..., 2] - 128
    expected = np.clip(np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1), 0, 255)
    assert np.abs(got - expected).max() <= 1.0                        # Pillow's fixed-point JFIF conversion


def test_an_animated_gif_gives_its_first_frame_and_says_so(tmp_path, capsys):
    frames = [Image.fromarray(np.full((4, 5, 3), v, np.uint8)) for v in (10, 200, 90)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert np.array_equal(pal.load_pixels(str(path), thumbnail=None), np.full((4, 5, 3), 10, np.uint8))
    assert f"{path} has 3 frames; using the first" in capsys.readouterr().err


def test_an_unknown_mode_is_named(tmp_path):
    lab = image(RGB, "RGB").convert("LAB") if "LAB" in Image.MODES else None
    if lab is None:
        pytest.skip("this Pillow has no LAB mode")
    with pytest.raises(ValueError, match=r"image mode 'LAB' is not supported; known: 1, L"):
        pal.to_rgb(lab)
