"""Synthetic analog clocks: a pure, jitted renderer drawn with signed distance functions.

Every image is a function of ``(key, hour, minute, style)`` only, so the data is infinite, runs on any device
batch by batch, and is reproducible bit for bit; the style (styles.py) gives the ranges of the per-image
parameters. jaxml/tasks/clock/README.md ("How the renderer draws") describes every element.

Geometry: pixel centres p of the 150x150 canvas relative to the clock centre (x right, y up) are turned into
the clock frame by the clock's rotation rho (clockwise); an angle theta clockwise from 12 o'clock points along u:

    q = [[cos rho, -sin rho], [sin rho, cos rho]] p        u(theta) = (sin theta, cos theta)
    theta_h = (h + m/60) * 30 deg                           theta_m = m * 6 deg

Every element is a signed distance d (pixels, negative inside) on all pixels at once, composited as

    coverage = 1 - smoothstep(-w, w, d)        img = lerp(img, level, coverage)
    w = sqrt(0.75^2 + (0.75 sqrt(2 pi) sigma)^2)

where w = 0.75 px antialiases and the wider w blurs by sigma px analytically (the slope of a blurred step; no
convolution). Ticks cost O(1) per pixel by angular domain repetition. Lighting, contrast and noise follow, and
the image is quantised to uint8. An extended style (``style.extended``, static) adds more elements and has a
program of its own; one program draws every plain style, its numbers passed as arguments (README).
"""
from __future__ import annotations

import functools
import math
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.tasks.clock.styles import CANVAS, TICK_STYLES, TRAIN_STYLE, ClockStyle, sample_clock_params, style_values

_HALF = CANVAS / 2.0  # half-canvas
_AA = 0.75            # antialiasing half-width of edges in pixels (no blur)
# Per hand shape of styles.HAND_SHAPES: (taper, rounding): half-width shrinks to (1 - taper) at the tip (a
# negative taper widens it: "flared" is 1.6x as wide at the tip); rounding is the corner radius as a fraction
# of the base half-width (1 = capsule; "lancet" narrows to half and ends in a round tip).
_HAND_SHAPE_TABLE = np.array([[0.0, 0.0], [0.85, 0.0], [0.0, 1.0], [-0.6, 0.0], [0.5, 0.5]], np.float32)


def _edge_width(blur_sigma):
    """Half-width w of the edge smoothstep for a Gaussian blur of blur_sigma pixels.

    A sharp edge blurred by a Gaussian has slope 1 / (sigma sqrt(2 pi)) at the edge; the
    smoothstep over [-w, w] has slope 3 / (4 w). w = sqrt(AA^2 + (3/4 sqrt(2 pi) sigma)^2)
    matches that slope for large sigma and is the 1-pixel antialiasing width at sigma = 0."""
    return jnp.sqrt(_AA ** 2 + (0.75 * math.sqrt(2 * math.pi) * blur_sigma) ** 2)


def _coverage(d, w):
    """Soft coverage of the region d < 0 (d in pixels): 1 - smoothstep(-w, w, d)."""
    t = jnp.clip((d + w) * (0.5 / w), 0.0, 1.0)
    return 1.0 - t * t * (3.0 - 2.0 * t)


def _box(t, s, center, half_len, half_width, rounding):
    """Signed distance to a box along axis t (centre ``center``, half-length ``half_len``) with
    half-width ``half_width`` (may vary with t) and corners rounded by ``rounding``."""
    qx = jnp.abs(t - center) - (half_len - rounding)
    qy = jnp.abs(s) - (half_width - rounding)
    outside = jnp.sqrt(jnp.maximum(qx, 0.0) ** 2 + jnp.maximum(qy, 0.0) ** 2)
    return outside + jnp.minimum(jnp.maximum(qx, qy), 0.0) - rounding


def _hand(qx, qy, theta, length, width, tail, taper, rounding_frac):
    """Signed distance to a hand pointing at clock angle theta from -tail to +length."""
    c, s_ = jnp.cos(theta), jnp.sin(theta)
    t = qx * s_ + qy * c          # along u(theta) = (sin, cos)
    s = qx * c - qy * s_          # across
    hw = 0.5 * width
    frac = jnp.clip((t + tail) * (1.0 / (length + tail)), 0.0, 1.0)   # scalar reciprocal
    half_width = hw * (1.0 - taper * frac)
    return _box(t, s, 0.5 * (length - tail), 0.5 * (length + tail), half_width, rounding_frac * hw)


# atan(a) / a as a polynomial in a^2 on [0, 1] (Chebyshev fit; |error| < 6e-7 rad).
_ATAN_COEFS = (0.9999997019767761, -0.3332797586917877, 0.1989501267671585, -0.13537614047527313,
               0.08475843816995621, -0.0377504900097847, 0.008096856996417046)


def angle_cw(x, y):
    """Angle of (x, y) clockwise from +y, i.e. atan2(x, y), in (-pi, pi]. A polynomial with
    octant reduction: XLA's CPU atan2 is scalar code, this one vectorises."""
    ax, ay = jnp.abs(x), jnp.abs(y)
    hi, lo = jnp.maximum(ax, ay), jnp.minimum(ax, ay)
    a = lo / jnp.maximum(hi, 1e-30)
    s = a * a
    poly = _ATAN_COEFS[-1]
    for c in _ATAN_COEFS[-2::-1]:
        poly = poly * s + c
    t = a * poly                                  # angle from the nearer axis, in [0, pi/4]
    t = jnp.where(ax > ay, 0.5 * jnp.pi - t, t)   # angle from +y of (|x|, |y|)
    t = jnp.where(y < 0, jnp.pi - t, t)
    return jnp.where(x < 0, -t, t)


def _small_sincos(d):
    """(sin d, cos d) by Taylor series, exact to float32 for |d| <= pi/12 (error < 1e-9)."""
    d2 = d * d
    sin = d * (1 - d2 / 6 * (1 - d2 / 20 * (1 - d2 / 42 * (1 - d2 / 72))))
    cos = 1 - d2 / 2 * (1 - d2 / 12 * (1 - d2 / 30 * (1 - d2 / 56)))
    return sin, cos


def _multiple_of(k, n):
    """k % n == 0 for integral k, without fmod (a scalar libm call on CPU)."""
    return jnp.abs(k - n * jnp.round(k * (1.0 / n))) < 0.5


def _ticks(r, phi, n, r_out, length, half_width, rounding, skip_every, keep_every=1, show_twelve=None):
    """Signed distance to n radial ticks ending at radius r_out, by angular repetition; ticks
    with index % skip_every == 0 are left out (the 12-o'clock slot, or the hour slots), and so
    are those with index % keep_every != 0 (keep_every may be traced: 3 keeps 3, 6 and 9). A traced
    bool ``show_twelve`` keeps the 12-o'clock tick (a face with no marker there)."""
    step = 2 * math.pi / n
    k = jnp.round(phi * (1.0 / step))
    sin_d, cos_d = _small_sincos(phi - k * step)
    d = _box(r * cos_d, r * sin_d, r_out - 0.5 * length, 0.5 * length, half_width, rounding)
    skipped = _multiple_of(k, skip_every)
    if show_twelve is not None:
        skipped = skipped & ~(show_twelve & (k == 0))
    hidden = skipped | ~_multiple_of(k, keep_every)
    return jnp.where(hidden, 1e3, d)


# Sine and cosine of the 13 hour slots k = -6..6 (k * 30 degrees), looked up instead of computed per pixel.
_HOUR_SIN = np.sin(np.deg2rad(30.0 * np.arange(-6, 7))).astype(np.float32)
_HOUR_COS = np.cos(np.deg2rad(30.0 * np.arange(-6, 7))).astype(np.float32)


def _glyphs(qx, qy, phi, r_num, size, seed):
    """Signed distance to numeral-like glyph blocks, upright in the clock frame, one per hour at radius r_num:
    two characters at 10, 11 and 12, one elsewhere (the width of a written hour). Each character, size px
    tall and 0.6 size wide, is a ring, a bar or a hook (a bar with a top stroke), picked per image and
    character by hashing (seed, hour, position): a coarse stand-in for digits, not a font."""
    k = jnp.round(phi * (6.0 / math.pi))                         # hour slot -6..6 (0 = 12 o'clock)
    idx = (k + 6).astype(jnp.int32)
    gx, gy = r_num * jnp.asarray(_HOUR_SIN)[idx], r_num * jnp.asarray(_HOUR_COS)[idx]
    lx, ly = qx - gx, qy - gy
    hour = jnp.mod(k, 12.0)
    two = (hour == 0) | (hour >= 10)
    half_h, cw = 0.5 * size, 0.6 * size
    stroke = jnp.maximum(0.07 * size, 0.6)                       # half-width of a stroke
    d = jnp.full(qx.shape, 1e3, jnp.float32)
    for j in (0, 1):
        cx = jnp.where(two, (j - 0.5) * 1.25 * cw, 0.0)
        kind = _fmix32(seed ^ (hour.astype(jnp.uint32) * jnp.uint32(2654435761)) ^ jnp.uint32(97 * (j + 1))) % 3
        x = lx - cx
        ring = jnp.abs(_box(ly, x, 0.0, half_h - stroke, 0.5 * cw - stroke, 0.35 * cw)) - stroke
        bar = _box(ly, x, 0.0, half_h, stroke, 0.0)
        hook = jnp.minimum(bar, _box(x, ly - half_h + stroke, 0.0, 0.5 * cw, stroke, 0.0))
        dj = jnp.where(kind == 0, ring, jnp.where(kind == 1, bar, hook))
        d = jnp.minimum(d, dj if j == 0 else jnp.where(two, dj, 1e3))
    return d


def _triangle(x, y, half_base, height):
    """Signed distance to an isosceles triangle, tip at the origin, base at y = height (Quilez)."""
    qx, qy = half_base, height
    x = jnp.abs(x)
    ta = jnp.clip((x * qx + y * qy) * (1.0 / (qx * qx + qy * qy)), 0.0, 1.0)
    ax, ay = x - qx * ta, y - qy * ta
    bx, by = x - qx * jnp.clip(x * (1.0 / qx), 0.0, 1.0), y - qy
    d2 = jnp.minimum(ax * ax + ay * ay, bx * bx + by * by)
    sgn = jnp.maximum(x * qy - y * qx, y - qy)   # > 0 outside
    return jnp.sqrt(d2) * jnp.sign(sgn)


def draw_clock(params: Mapping[str, jax.Array], hour, minute, style) -> jax.Array:
    """Noise-free clock image f32[150, 150] (blurred, before noise and quantisation) from params. ``style``: a
    ClockStyle, or a plain one's ``style_values`` (then every plain element is traced and masked per image)."""
    hour = jnp.asarray(hour, jnp.float32)
    minute = jnp.asarray(minute, jnp.float32)
    ax = jnp.arange(CANVAS, dtype=jnp.float32) - (CANVAS - 1) / 2.0
    px = ax[None, :] - params["off_x"]            # x right
    py = -ax[:, None] - params["off_y"]           # y up
    plain_values = not isinstance(style, ClockStyle)
    extended = not plain_values and style.extended  # static: the wider vocabulary (styles.WIDE_STYLE)
    if extended:  # squash by aspect along a random axis e1 = (cos a, sin a): p = S q, q = S^-1 p
        ca, sa = jnp.cos(params["aspect_angle"]), jnp.sin(params["aspect_angle"])
        t1, t2 = ca * px + sa * py, (-sa * px + ca * py) / params["aspect"]
        px, py = ca * t1 - sa * t2, sa * t1 + ca * t2
    cr, sr = jnp.cos(params["rotation"]), jnp.sin(params["rotation"])
    qx, qy = cr * px - sr * py, sr * px + cr * py  # clock frame
    r = jnp.sqrt(qx * qx + qy * qy)
    phi = angle_cw(qx, qy)                        # clockwise from 12
    R = params["radius"]
    w = _edge_width(params["blur_sigma"])

    ink = _coverage(jnp.abs(r - (R - 0.5 * params["rim_width"])) - 0.5 * params["rim_width"], w)
    tick_out = R - params["rim_width"] - 0.03 * R
    tick = params["tick_style"]

    def is_style(*names):
        return functools.reduce(jnp.logical_or, [tick == TICK_STYLES.index(n) for n in names])

    dots = is_style("dots12", "dots60")
    squares = is_style("squares12")
    # a dot's radius is 2.5 line half-widths; a square's half-side 2.2 (equal areas: pi 2.5^2 ~ 4 2.2^2)
    tick_hw = jnp.maximum(0.5 * params["tick_width"], 0.6) * jnp.where(
        dots, 2.5, jnp.where(squares, 2.2, jnp.where(is_style("bars12"), 2.0, 1.0)))
    tick_len = jnp.where(dots | squares, 2 * tick_hw, params["tick_len"])
    major = _ticks(r, phi, 12, tick_out, tick_len, tick_hw, jnp.where(dots, tick_hw, 0.0), 12,
                   jnp.where(is_style("lines4"), 3.0, 1.0),
                   show_twelve=(params["marker_kind"] == 2) if extended else None)
    ink = jnp.maximum(ink, jnp.where(is_style("none"), 0.0, _coverage(major, w)))
    if plain_values or {"lines60", "dots60"} & set(style.tick_styles):  # static: minute ticks traced when drawn
        minor_dots = is_style("dots60")
        minor_hw = jnp.where(minor_dots, jnp.maximum(0.5 * params["tick_width"], 0.6),
                             jnp.maximum(0.25 * params["tick_width"], 0.5))
        minor_len = jnp.where(minor_dots, 2 * minor_hw, 0.45 * params["tick_len"])
        minor = _ticks(r, phi, 60, tick_out - jnp.where(minor_dots, tick_hw - minor_hw, 0.0), minor_len,
                       minor_hw, jnp.where(minor_dots, minor_hw, 0.0), 5)
        ink = jnp.maximum(ink, jnp.where(is_style("lines60", "dots60"), _coverage(minor, w), 0.0))
    marker = _triangle(qx, qy - (tick_out - params["marker_len"]), 0.5 * params["marker_width"],
                       params["marker_len"])
    if extended:  # a triangle, a long bar or nothing at 12; numeral-like glyphs inside the ticks
        bar_len = 2.2 * params["tick_len"]
        bar = _box(qy, qx, tick_out - 0.5 * bar_len, 0.5 * bar_len, jnp.maximum(1.6 * tick_hw, 1.2), 0.0)
        kind = params["marker_kind"]
        marker = jnp.where(kind == 0, marker, jnp.where(kind == 1, bar, 1e3))
        r_num = tick_out - params["tick_len"] - 0.75 * params["glyph_size"] - 0.03 * R
        glyphs = _glyphs(qx, qy, phi, r_num, params["glyph_size"], params["glyph_seed"])
        ink = jnp.maximum(ink, jnp.where(params["numerals"], _coverage(glyphs, w), 0.0))
    ink = jnp.maximum(ink, _coverage(marker, w))

    taper, rounding = jnp.asarray(_HAND_SHAPE_TABLE)[params["hand_shape"]]
    theta_h = jnp.deg2rad((jnp.mod(hour, 12.0) + minute / 60.0) * 30.0)
    theta_m = jnp.deg2rad(minute * 6.0)
    hour_w = jnp.maximum(params["hour_width"], 1.5)
    minute_w = jnp.maximum(params["minute_width"], 1.2)
    hands = jnp.minimum(
        _hand(qx, qy, theta_h, params["hour_len"], hour_w, params["tail"], taper, rounding),
        _hand(qx, qy, theta_m, params["minute_len"], minute_w, params["tail"], taper, rounding))
    hands = jnp.minimum(hands, r - 0.7 * hour_w)   # centre cap
    ink = jnp.maximum(ink, _coverage(hands, w))

    background = _background(params, ax, w, style) if extended else params["background"]
    img = background + (params["face"] - background) * _coverage(r - R, w)
    img = img + (params["ink"] - img) * ink
    if extended:  # a thin second hand in its own grey: a distractor
        second = _hand(qx, qy, params["second_angle"], params["second_len"], jnp.maximum(0.015 * R, 1.0),
                       0.2 * R, 0.0, 0.0)
        img = img + (params["second_level"] - img) * jnp.where(params["second"], _coverage(second, w), 0.0)
    ga = params["grad_angle"]
    ramp = (jnp.cos(ga) * ax[None, :] + jnp.sin(ga) * ax[:, None]) / _HALF
    img = img * (1.0 + params["gradient"] * ramp)
    img = 0.5 + params["contrast"] * (img - 0.5)
    if extended:
        img = jnp.clip(img, 0.0, 1.0) ** params["gamma"]
    return img


def _background(params, ax, w, style: ClockStyle):
    """The wider vocabulary's background f32[150, 150]: its grey level plus two gratings of amplitude
    ``texture`` and ``style.clutter`` random bars, boxes and discs (what stands behind a clock in a room)."""
    x, y = ax[None, :], -ax[:, None]
    bg = jnp.full((CANVAS, CANVAS), params["background"], jnp.float32)
    for i in range(2):
        a = params["tex_angles"][i]
        bg = bg + 0.5 * params["texture"] * jnp.sin(
            params["tex_freqs"][i] * (jnp.cos(a) * x + jnp.sin(a) * y) + params["tex_phases"][i])
    for i in range(style.clutter):
        cx, cy, a, b, ang, level, kind = (params["clutter"][i, j] for j in range(7))
        cx, cy = (cx - 0.5) * CANVAS, (cy - 0.5) * CANVAS
        half_a, half_b = 3.0 + 35.0 * a, 1.0 + 15.0 * b
        c, s_ = jnp.cos(np.pi * ang), jnp.sin(np.pi * ang)
        t, s = c * (x - cx) + s_ * (y - cy), -s_ * (x - cx) + c * (y - cy)
        d = jnp.where(kind < 0.6, _box(t, s, 0.0, half_a, half_b, 0.0), jnp.sqrt(t * t + s * s) - half_b - 2.0)
        bg = bg + (level - bg) * _coverage(d, w)
    return bg


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser: a bijection on uint32 with full avalanche."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def hash_noise(key):
    """Approximately standard-normal noise f32[150, 150], deterministic in key.

    Counter-based: pixel i gets h = fmix32(i * 0x9E3779B9 ^ fmix32(seed)) with a 32-bit seed
    drawn from key; its 4 bytes b_j are summed (Irwin-Hall): (sum b_j - 510) / 147.8 has mean
    0, variance 1, range +-3.45. Why: on CPU it is far cheaper than threefry normals."""
    seed = _fmix32(jax.random.bits(key, (), jnp.uint32))
    i = jnp.arange(CANVAS * CANVAS, dtype=jnp.uint32).reshape(CANVAS, CANVAS)
    h = _fmix32((i * jnp.uint32(0x9E3779B9)) ^ seed)
    total = (h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24)
    return (total.astype(jnp.float32) - 510.0) * (1.0 / math.sqrt(4 * (256 ** 2 - 1) / 12))


def _render(key, hour, minute, style):
    k_params, k_noise = jax.random.split(key)
    params = sample_clock_params(k_params, style)
    img = draw_clock(params, hour, minute, style)
    if not isinstance(style, ClockStyle) or style.noise_std[1] > 0:  # static (noise_std 0 adds exactly 0)
        img = img + params["noise_std"] * hash_noise(k_noise)
    return jnp.round(jnp.clip(img, 0.0, 1.0) * 255.0).astype(jnp.uint8)


def _traced(style: ClockStyle):
    """(static, values) for the jitted programs below: a plain style travels as traced numbers
    (styles.style_values: one compiled program draws them all), an extended one as a static argument."""
    return (style, None) if style.extended else (None, style_values(style))


@jax.jit(static_argnames=("static",))
def _render_clock(key, hour, minute, static, values):
    return _render(key, hour, minute, static if values is None else values)


def render_clock(key: jax.Array, hour, minute, style: ClockStyle = TRAIN_STYLE) -> jax.Array:
    """Renders one clock showing ``hour:minute`` (hour taken mod 12) as uint8[150, 150].

    Pure in ``key``: everything random (geometry, design, lighting, noise) comes from it.
    Vmappable over (key, hour, minute)."""
    return _render_clock(key, hour, minute, *_traced(style))


def _example(key: jax.Array, index, style: ClockStyle = TRAIN_STYLE):
    """Example ``index`` of the stream ``key``: (image uint8[150, 150], hour i32, minute i32).

    ``k = fold_in(key, index)``; ``k_time, k_img = split(k)``; hour ~ U{0..11} and minute ~
    U{0..59} are drawn from k_time and the image is ``render_clock(k_img, hour, minute, style)``.
    Indexing (rather than splitting into n keys) makes a stream's first m examples the same
    whatever the batch size or chunking."""
    k_time, k_img = jax.random.split(jax.random.fold_in(key, index))
    hour, minute = uniform_time(k_time)
    return _render(k_img, hour, minute, style), hour, minute


def uniform_time(key):
    """(hour ~ U{0..11}, minute ~ U{0..59}) as int32 scalars."""
    k_h, k_m = jax.random.split(key)
    return jax.random.randint(k_h, (), 0, 12, jnp.int32), jax.random.randint(k_m, (), 0, 60, jnp.int32)


@jax.jit(static_argnames=("static",))
def _clock_example(key, index, static, values):
    return _example(key, index, static if values is None else values)


def clock_example(key: jax.Array, index, style: ClockStyle = TRAIN_STYLE):
    """Example ``index`` of the stream ``key`` (see :func:`_example`), one clock at a time."""
    return _clock_example(key, index, *_traced(style))


def _rotation(key: jax.Array, index, style):
    """The whole-clock rotation (radians, clockwise) of example ``index`` of the stream ``key``: the
    same key splits as :func:`_example` and ``_render``, the parameters without the drawing."""
    _, k_img = jax.random.split(jax.random.fold_in(key, index))
    k_params, _ = jax.random.split(k_img)
    return sample_clock_params(k_params, style)["rotation"]


@jax.jit(static_argnames=("n", "static"))
def _labelled_batch(key, n, static, values, start):
    style = static if values is None else values
    index = start + jnp.arange(n, dtype=jnp.uint32)
    return jax.vmap(lambda i: _example(key, i, style) + (_rotation(key, i, style),))(index)


MIN_BATCH = 32  # smaller batches are drawn as the first n of 32: one compiled program for every small n


def render_labelled_batch(key: jax.Array, n: int, style: ClockStyle = TRAIN_STYLE, start=0):
    """:func:`render_batch` and :func:`rotations` of the same arguments from one compiled program:
    (images uint8[n, 150, 150], hour int32[n], minute int32[n], rotation f32[n])."""
    out = _labelled_batch(key, max(n, MIN_BATCH), *_traced(style), jnp.asarray(start, jnp.uint32))
    return out if n >= MIN_BATCH else tuple(a[:n] for a in out)


def render_batch(key: jax.Array, n: int, style: ClockStyle = TRAIN_STYLE, start=0):
    """Examples start .. start+n-1 of the stream ``key`` (see :func:`clock_example`).

    Returns (images uint8[n, 150, 150], hour int32[n] in 0..11, minute int32[n] in 0..59), uniform
    random times. One compiled program per n (n >= MIN_BATCH; a smaller n shares MIN_BATCH's) serves every
    plain style and every ``start``.

    Equal to one-by-one :func:`clock_example` calls up to float rounding: XLA compiles the
    vectorised and the scalar programs differently (FMA contraction, vector vs scalar cos), and
    ~1 pixel in 10^6 lands on the other side of a grey-level boundary (|diff| <= 1)."""
    return render_labelled_batch(key, n, style, start)[:3]


def rotations(key: jax.Array, n: int, style: ClockStyle = TRAIN_STYLE, start=0):
    """f32[n] rotations of the examples :func:`render_batch` draws with the same arguments: a label the
    renderer knows (in the image, a hand at clock angle theta points at theta + rotation clockwise from
    up, the 12-o'clock marker at the rotation itself)."""
    return render_labelled_batch(key, n, style, start)[3]
