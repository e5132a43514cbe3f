"""Synthetic analog clocks: a pure, jitted renderer drawn with signed distance functions.

Every image is a function of ``(key, hour, minute, style)`` only, so the data is infinite, runs on
any device batch by batch, and is reproducible bit for bit.

Geometry. Pixel centres of the 150x150 canvas are taken relative to the clock centre in pixel
units, with x to the right and y *up*. The clock frame is the image frame rotated back by the
clock's rotation rho (clockwise): ``q = [[cos rho, -sin rho], [sin rho, cos rho]] p``. In the clock
frame an angle theta measured clockwise from 12 o'clock points along ``u(theta) = (sin theta,
cos theta)``; the hour hand sits at ``theta_h = (h + m/60) * 30 deg`` and the minute hand at
``theta_m = m * 6 deg``.

Every element is a signed distance d (pixels, negative inside) evaluated on all pixels at once:
face disc ``|q| - R``, rim ring ``||q| - (R - w/2)| - w/2``, hands and ticks as (tapered,
rounded) boxes in the frame of their own axis, the 12-o'clock marker as an isosceles triangle
pointing at the centre. 4, 12 or 60 ticks (lines, bars, squares or dots) cost O(1) per pixel by angular domain
repetition: the pixel's polar angle is snapped to the nearest tick, and the pixel is expressed in
that tick's frame. Coverage is ``1 - smoothstep(-w, w, d)`` and layers are composited with
``lerp(img, level, coverage)``. w = 0.75 px antialiases; the per-image Gaussian blur of sigma px
is applied analytically by widening every edge to ``w = sqrt(0.75^2 + (0.75 sqrt(2 pi) sigma)^2)``
(the slope of a blurred step), which costs nothing per pixel (a 9-tap convolution fused by XLA
recomputed the drawing per tap and cost 5x the drawing itself on CPU). Then a lighting gradient,
a contrast change and Gaussian-like noise are applied and the image is quantised to uint8.

Styles. A :class:`ClockStyle` holds the ranges every per-image parameter is drawn from (uniform),
and the allowed discrete choices (tick style, hand shape). It is static (hashable) under ``jit``.
``TRAIN_STYLE`` and ``HELDOUT_STYLE`` have *disjoint* tick styles (lines, bars, squares or none / round dots),
hand shapes (rectangular, rounded, flared, lancet / sharply tapered), lighting gradient and contrast
ranges, and heavier blur/noise in the held-out set, so a model trained on the first can be scored on
clock designs it never saw. ``CANONICAL_STYLE`` is an upright, centred, noiseless clock for tests.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

CANVAS = 150          # image side in pixels
_HALF = CANVAS / 2.0  # half-canvas; clock radius is a fraction of it
_AA = 0.75            # antialiasing half-width of edges in pixels (no blur)

# Tick styles: 12 hour lines; plus 48 minute lines; 12 round dots; 12 dots plus 48 small ones; lines at
# 3, 6 and 9 only; no ticks (rim and 12-o'clock marker alone); 12 thick bars (twice a line's width); 12
# squares (the area of a dot of dots12: compact blobs with corners).
TICK_STYLES = ("lines12", "lines60", "dots12", "dots60", "lines4", "none", "bars12", "squares12")
HAND_SHAPES = ("rect", "tapered", "rounded", "flared", "lancet")
# Per hand shape: (taper, rounding): half-width shrinks to (1 - taper) at the tip (a negative taper
# widens it: "flared" is 1.6x as wide at the tip); rounding is the corner radius as a fraction of the
# base half-width (1 = capsule; "lancet" narrows to half and ends in a round tip).
_HAND_SHAPE_TABLE = np.array([[0.0, 0.0], [0.85, 0.0], [0.0, 1.0], [-0.6, 0.0], [0.5, 0.5]], np.float32)


@dataclasses.dataclass(frozen=True)
class ClockStyle:
    """Ranges (lo, hi) each per-image parameter is drawn from uniformly; lengths are fractions
    of the clock radius R unless noted. Hashable: pass it as a static argument under jit."""
    rotation_deg: tuple[float, float] = (0.0, 360.0)   # whole-clock rotation, clockwise
    radius_frac: tuple[float, float] = (0.72, 0.95)    # R as a fraction of the half-canvas (75 px)
    offset_frac: float = 1.0                           # centre may move this fraction of the margin
    hour_len: tuple[float, float] = (0.42, 0.55)
    minute_len: tuple[float, float] = (0.68, 0.85)
    hour_width: tuple[float, float] = (0.06, 0.09)     # full width
    minute_width: tuple[float, float] = (0.025, 0.045)
    hand_tail: tuple[float, float] = (0.0, 0.15)       # counterweight behind the centre
    hand_shapes: tuple[str, ...] = ("rect", "rounded", "flared", "lancet")
    tick_styles: tuple[str, ...] = ("lines12", "lines60", "lines4", "bars12", "squares12", "none")
    tick_len: tuple[float, float] = (0.07, 0.13)       # hour ticks; minute ticks are 45% of it
    tick_width: tuple[float, float] = (0.018, 0.03)
    rim_width: tuple[float, float] = (0.015, 0.05)
    marker_len: tuple[float, float] = (0.11, 0.16)     # 12-o'clock triangle, tip to base
    marker_width: tuple[float, float] = (0.08, 0.11)   # its base width
    face_level: tuple[float, float] = (0.75, 1.0)      # grey levels in [0, 1]
    background_level: tuple[float, float] = (0.05, 0.95)
    ink_level: tuple[float, float] = (0.0, 0.2)
    gradient: tuple[float, float] = (0.0, 0.3)         # brightness change across half the canvas
    contrast: tuple[float, float] = (0.75, 1.0)        # scale about grey 0.5
    blur_sigma: tuple[float, float] = (0.0, 0.9)       # pixels
    noise_std: tuple[float, float] = (0.0, 0.03)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("offset_frac", "hand_shapes", "tick_styles"):
                continue
            if (not isinstance(v, tuple) or len(v) != 2 or v[0] > v[1]
                    or not all(isinstance(x, numbers.Real) for x in v)):
                raise ValueError(f"ClockStyle.{f.name} must be a tuple (lo, hi) with lo <= hi, got {v!r}")
        for name, allowed in (("hand_shapes", HAND_SHAPES), ("tick_styles", TICK_STYLES)):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not v or any(s not in allowed for s in v):
                raise ValueError(f"ClockStyle.{name} must be a non-empty tuple drawn from {allowed}, got {v!r}")
        checks = [
            (0.0 < self.radius_frac[0] and self.radius_frac[1] <= 1.0, "radius_frac must lie in (0, 1]"),
            (0.0 <= self.offset_frac <= 1.0, "offset_frac must lie in [0, 1]"),
            (self.hour_len[1] < self.minute_len[0], "hour_len must lie below minute_len (hour hand shorter)"),
            (self.hour_width[0] > self.minute_width[1], "hour_width must lie above minute_width (hour hand wider)"),
            (self.minute_len[1] < 1.0, "minute_len must stay inside the face (< 1)"),
            (0.0 <= self.blur_sigma[0] and self.blur_sigma[1] <= 1.5, "blur_sigma must lie in [0, 1.5] px"),
            (self.noise_std[0] >= 0.0, "noise_std must be >= 0"),
            (self.contrast[0] > 0.0, "contrast must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"ClockStyle: {msg}; got {self!r}")


    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> "ClockStyle":
        """Builds a style from a plain mapping (e.g. a ConfigDict), turning lists into tuples."""
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"ClockStyle: unknown fields {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in fields.items()})


TRAIN_STYLE = ClockStyle()
# Held out from TRAIN_STYLE: round dot ticks, 12 or 60 (train: line ticks, 12, 60 or 4, thick bars, 12
# squares, or none), sharply tapered hands (train: rectangular, rounded, flared, lancet), stronger lighting
# gradients, lower contrast, more blur and noise.
# Rotation (full circle), scale, offset, hand lengths/widths and grey levels are shared.
HELDOUT_STYLE = dataclasses.replace(
    TRAIN_STYLE, tick_styles=("dots12", "dots60"), hand_shapes=("tapered",), gradient=(0.3, 0.5),
    contrast=(0.55, 0.75), blur_sigma=(0.9, 1.3), noise_std=(0.03, 0.05))
# Upright, centred, fixed geometry, no lighting, blur or noise: for tests that check angles.
CANONICAL_STYLE = ClockStyle(
    rotation_deg=(0.0, 0.0), radius_frac=(0.9, 0.9), offset_frac=0.0, hour_len=(0.5, 0.5),
    minute_len=(0.8, 0.8), hour_width=(0.08, 0.08), minute_width=(0.035, 0.035),
    hand_tail=(0.0, 0.0), hand_shapes=("rect",), tick_styles=("lines12",), tick_len=(0.1, 0.1),
    tick_width=(0.025, 0.025), rim_width=(0.03, 0.03), marker_len=(0.14, 0.14),
    marker_width=(0.1, 0.1), face_level=(1.0, 1.0), background_level=(0.5, 0.5),
    ink_level=(0.0, 0.0), gradient=(0.0, 0.0), contrast=(1.0, 1.0), blur_sigma=(0.0, 0.0),
    noise_std=(0.0, 0.0))
STYLES = {"train": TRAIN_STYLE, "heldout": HELDOUT_STYLE, "canonical": CANONICAL_STYLE}


def sample_clock_params(key: jax.Array, style: ClockStyle) -> dict[str, jax.Array]:
    """Draws one image's scalar parameters from ``style`` (all f32 scalars; lengths in pixels)."""
    names = ["rotation", "radius", "off_x", "off_y", "hour_len", "minute_len", "hour_width",
             "minute_width", "tail", "tick_len", "tick_width", "rim_width", "marker_len",
             "marker_width", "face", "background", "ink", "gradient", "grad_angle", "contrast",
             "blur_sigma", "noise_std"]
    u = dict(zip(names, jax.random.uniform(key, (len(names),))))
    k_shape, k_tick = jax.random.split(jax.random.fold_in(key, 1))

    def draw(name, rng):
        return rng[0] + (rng[1] - rng[0]) * u[name]

    radius = draw("radius", style.radius_frac) * _HALF
    margin = style.offset_frac * (_HALF - radius)
    p = {"rotation": jnp.deg2rad(draw("rotation", style.rotation_deg)), "radius": radius,
         "off_x": (2 * u["off_x"] - 1) * margin, "off_y": (2 * u["off_y"] - 1) * margin,
         "grad_angle": 2 * jnp.pi * u["grad_angle"]}
    for name, field in [("hour_len", "hour_len"), ("minute_len", "minute_len"),
                        ("hour_width", "hour_width"), ("minute_width", "minute_width"),
                        ("tail", "hand_tail"), ("tick_len", "tick_len"), ("tick_width", "tick_width"),
                        ("rim_width", "rim_width"), ("marker_len", "marker_len"),
                        ("marker_width", "marker_width")]:
        p[name] = draw(name, getattr(style, field)) * radius
    for name, field in [("face", "face_level"), ("background", "background_level"),
                        ("ink", "ink_level"), ("gradient", "gradient"), ("contrast", "contrast"),
                        ("blur_sigma", "blur_sigma"), ("noise_std", "noise_std")]:
        p[name] = draw(name, getattr(style, field))
    shape_ids = jnp.array([HAND_SHAPES.index(s) for s in style.hand_shapes], jnp.int32)
    tick_ids = jnp.array([TICK_STYLES.index(s) for s in style.tick_styles], jnp.int32)
    p["hand_shape"] = jax.random.choice(k_shape, shape_ids)
    p["tick_style"] = jax.random.choice(k_tick, tick_ids)
    return p


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


def _angle_cw(x, y):
    """Angle of (x, y) clockwise from +y, i.e. atan2(x, y), in (-pi, pi]. A polynomial with
    octant reduction: XLA's CPU atan2 is scalar code (~80 ns/px), this one vectorises."""
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
    """k % n == 0 for integral k, without fmod (a scalar libm call on CPU, ~25 ns/px)."""
    return jnp.abs(k - n * jnp.round(k * (1.0 / n))) < 0.5


def _ticks(r, phi, n, r_out, length, half_width, rounding, skip_every, keep_every=1):
    """Signed distance to n radial ticks ending at radius r_out, by angular repetition; ticks
    with index % skip_every == 0 are left out (the 12-o'clock slot, or the hour slots), and so
    are those with index % keep_every != 0 (keep_every may be traced: 3 keeps 3, 6 and 9)."""
    step = 2 * math.pi / n
    k = jnp.round(phi * (1.0 / step))
    sin_d, cos_d = _small_sincos(phi - k * step)
    d = _box(r * cos_d, r * sin_d, r_out - 0.5 * length, 0.5 * length, half_width, rounding)
    hidden = _multiple_of(k, skip_every) | ~_multiple_of(k, keep_every)
    return jnp.where(hidden, 1e3, d)


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


def draw_clock(params: Mapping[str, jax.Array], hour, minute, style: ClockStyle) -> jax.Array:
    """Noise-free clock image f32[150, 150] (blurred, before noise and quantisation) from params."""
    hour = jnp.asarray(hour, jnp.float32)
    minute = jnp.asarray(minute, jnp.float32)
    ax = jnp.arange(CANVAS, dtype=jnp.float32) - (CANVAS - 1) / 2.0
    px = ax[None, :] - params["off_x"]            # x right
    py = -ax[:, None] - params["off_y"]           # y up
    cr, sr = jnp.cos(params["rotation"]), jnp.sin(params["rotation"])
    qx, qy = cr * px - sr * py, sr * px + cr * py  # clock frame
    r = jnp.sqrt(qx * qx + qy * qy)
    phi = _angle_cw(qx, qy)                        # clockwise from 12
    R = params["radius"]
    w = _edge_width(params["blur_sigma"])

    ink = _coverage(jnp.abs(r - (R - 0.5 * params["rim_width"])) - 0.5 * params["rim_width"], w)
    tick_out = R - params["rim_width"] - 0.03 * R
    tick = params["tick_style"]
    is_style = lambda *names: functools.reduce(jnp.logical_or, [tick == TICK_STYLES.index(n) for n in names])
    dots = is_style("dots12", "dots60")
    squares = is_style("squares12")
    # a dot's radius is 2.5 line half-widths; a square's half-side 2.2 (equal areas: pi 2.5^2 ~ 4 2.2^2)
    tick_hw = jnp.maximum(0.5 * params["tick_width"], 0.6) * jnp.where(
        dots, 2.5, jnp.where(squares, 2.2, jnp.where(is_style("bars12"), 2.0, 1.0)))
    tick_len = jnp.where(dots | squares, 2 * tick_hw, params["tick_len"])
    major = _ticks(r, phi, 12, tick_out, tick_len, tick_hw, jnp.where(dots, tick_hw, 0.0), 12,
                   jnp.where(is_style("lines4"), 3.0, 1.0))
    ink = jnp.maximum(ink, jnp.where(is_style("none"), 0.0, _coverage(major, w)))
    if {"lines60", "dots60"} & set(style.tick_styles):  # static: minute ticks traced only when drawn
        minor_dots = is_style("dots60")
        minor_hw = jnp.where(minor_dots, jnp.maximum(0.5 * params["tick_width"], 0.6),
                             jnp.maximum(0.25 * params["tick_width"], 0.5))
        minor_len = jnp.where(minor_dots, 2 * minor_hw, 0.45 * params["tick_len"])
        minor = _ticks(r, phi, 60, tick_out - jnp.where(minor_dots, tick_hw - minor_hw, 0.0), minor_len,
                       minor_hw, jnp.where(minor_dots, minor_hw, 0.0), 5)
        ink = jnp.maximum(ink, jnp.where(is_style("lines60", "dots60"), _coverage(minor, w), 0.0))
    marker = _triangle(qx, qy - (tick_out - params["marker_len"]), 0.5 * params["marker_width"],
                       params["marker_len"])
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

    img = params["background"] + (params["face"] - params["background"]) * _coverage(r - R, w)
    img = img + (params["ink"] - img) * ink
    ga = params["grad_angle"]
    ramp = (jnp.cos(ga) * ax[None, :] + jnp.sin(ga) * ax[:, None]) / _HALF
    img = img * (1.0 + params["gradient"] * ramp)
    return 0.5 + params["contrast"] * (img - 0.5)


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser: a bijection on uint32 with full avalanche."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _hash_noise(key):
    """Approximately standard-normal noise f32[150, 150], deterministic in key.

    Counter-based: pixel i gets h = fmix32(i * 0x9E3779B9 ^ fmix32(seed)) with a 32-bit seed
    drawn from key; its 4 bytes b_j are summed (Irwin-Hall): (sum b_j - 510) / 147.8 has mean
    0, variance 1, range +-3.45. On CPU: ~1.5 ns/px against ~60 for threefry normals."""
    seed = _fmix32(jax.random.bits(key, (), jnp.uint32))
    i = jnp.arange(CANVAS * CANVAS, dtype=jnp.uint32).reshape(CANVAS, CANVAS)
    h = _fmix32((i * jnp.uint32(0x9E3779B9)) ^ seed)
    total = (h & 255) + ((h >> 8) & 255) + ((h >> 16) & 255) + (h >> 24)
    return (total.astype(jnp.float32) - 510.0) * (1.0 / math.sqrt(4 * (256 ** 2 - 1) / 12))


def _render(key, hour, minute, style):
    k_params, k_noise = jax.random.split(key)
    params = sample_clock_params(k_params, style)
    img = draw_clock(params, hour, minute, style)
    if style.noise_std[1] > 0:  # static
        img = img + params["noise_std"] * _hash_noise(k_noise)
    return jnp.round(jnp.clip(img, 0.0, 1.0) * 255.0).astype(jnp.uint8)


@jax.jit(static_argnames=("style",))
def render_clock(key: jax.Array, hour, minute, style: ClockStyle = TRAIN_STYLE) -> jax.Array:
    """Renders one clock showing ``hour:minute`` (hour taken mod 12) as uint8[150, 150].

    Pure in ``key``: everything random (geometry, design, lighting, noise) comes from it.
    Vmappable over (key, hour, minute)."""
    return _render(key, hour, minute, style)


def _example(key: jax.Array, index, style: ClockStyle = TRAIN_STYLE):
    """Example ``index`` of the stream ``key``: (image uint8[150, 150], hour i32, minute i32).

    ``k = fold_in(key, index)``; ``k_time, k_img = split(k)``; hour ~ U{0..11} and minute ~
    U{0..59} are drawn from k_time and the image is ``render_clock(k_img, hour, minute, style)``.
    Indexing (rather than splitting into n keys) makes a stream's first m examples the same
    whatever the batch size or chunking."""
    k_time, k_img = jax.random.split(jax.random.fold_in(key, index))
    hour, minute = _uniform_time(k_time)
    return _render(k_img, hour, minute, style), hour, minute


def _uniform_time(key):
    """(hour ~ U{0..11}, minute ~ U{0..59}) as int32 scalars."""
    k_h, k_m = jax.random.split(key)
    return jax.random.randint(k_h, (), 0, 12, jnp.int32), jax.random.randint(k_m, (), 0, 60, jnp.int32)


clock_example = jax.jit(_example, static_argnames=("style",))


@jax.jit(static_argnames=("n", "style"))
def render_batch(key: jax.Array, n: int, style: ClockStyle = TRAIN_STYLE, start=0):
    """Examples start .. start+n-1 of the stream ``key`` (see :func:`clock_example`).

    Returns (images uint8[n, 150, 150], hour int32[n] in 0..11, minute int32[n] in 0..59), uniform
    random times. ``start`` is traced: consecutive batches reuse one compilation (pass it the
    same way each time; jit caches on how arguments are passed, a defaulted one included).

    Equal to one-by-one :func:`clock_example` calls up to float rounding: XLA compiles the
    vectorised and the scalar programs differently (FMA contraction, vector vs scalar cos), and
    ~1 pixel in 10^6 lands on the other side of a grey-level boundary (|diff| <= 1)."""
    index = jnp.asarray(start, jnp.uint32) + jnp.arange(n, dtype=jnp.uint32)
    return jax.vmap(lambda i: _example(key, i, style))(index)


def _rotation(key: jax.Array, index, style: ClockStyle):
    """The whole-clock rotation (radians, clockwise) of example ``index`` of the stream ``key``: the
    same key splits as :func:`_example` and ``_render``, the parameters without the drawing."""
    _, k_img = jax.random.split(jax.random.fold_in(key, index))
    k_params, _ = jax.random.split(k_img)
    return sample_clock_params(k_params, style)["rotation"]


@jax.jit(static_argnames=("n", "style"))
def rotations(key: jax.Array, n: int, style: ClockStyle = TRAIN_STYLE, start=0):
    """f32[n] rotations of the examples :func:`render_batch` draws with the same arguments: a label the
    renderer knows (in the image, a hand at clock angle theta points at theta + rotation clockwise from
    up, the 12-o'clock marker at the rotation itself)."""
    index = jnp.asarray(start, jnp.uint32) + jnp.arange(n, dtype=jnp.uint32)
    return jax.vmap(lambda i: _rotation(key, i, style))(index)


def contrast_curve(x: jax.Array, gamma: float) -> jax.Array:
    """The report's preprocessing: ``y = clip(x, 0, 1) ** gamma`` on pixels in [0, 1].

    For gamma > 1 every pixel gets darker (y <= x), and dark pixels relatively more so
    (y / x = x ** (gamma - 1) grows with x): hands and ticks stand out from a grey face.
    0 and 1 are fixed points; the curve is monotone increasing."""
    if isinstance(gamma, numbers.Real) and not gamma > 0:  # (a traced gamma is not checked)
        raise ValueError(f"contrast_curve: gamma must be > 0, got {gamma!r}")
    return jnp.clip(x, 0.0, 1.0) ** gamma


def detrend_standardize(x: jax.Array, eps: float = 1e-3) -> jax.Array:
    """Per image: remove the least-squares plane a + b X + c Y, then scale to unit standard deviation.

    x: f32[..., H, W, C] (pixels in any range). With centred coordinates X, Y on the square grid, the
    plane's basis {1, X, Y} is orthogonal, so a = mean(x), b = <x, X> / <X, X>, c = <x, Y> / <Y, Y>.
    The result is unchanged by a contrast change ``0.5 + k (x - 0.5)`` (k > 0) and by an added linear
    brightness ramp, and nearly so by a multiplicative one ``x (1 + g ramp)`` — the renderer's lighting
    gradient — whose first-order part is such a ramp. ``eps`` floors the standard deviation (a blank image
    stays ~0 instead of amplifying its noise)."""
    h, w = x.shape[-3], x.shape[-2]
    gy = jnp.arange(h, dtype=jnp.float32)[:, None, None] - (h - 1) / 2.0
    gx = jnp.arange(w, dtype=jnp.float32)[None, :, None] - (w - 1) / 2.0
    axes = (-3, -2)
    mean = jnp.mean(x, axis=axes, keepdims=True)
    bx = jnp.sum(x * gx, axis=axes, keepdims=True) / (h * jnp.sum(gx * gx))
    by = jnp.sum(x * gy, axis=axes, keepdims=True) / (w * jnp.sum(gy * gy))
    r = x - mean - bx * gx - by * gy
    return r / jnp.maximum(jnp.sqrt(jnp.mean(r * r, axis=axes, keepdims=True)), eps)


_SPLITS = {"train": 0, "test": 1, "heldout": 2}  # independent streams per split
_CHUNK = 256


def _dataset_uint8(seed: int, n: int, style: ClockStyle, split: str):
    """(images uint8[n, 150, 150], hour, minute, rotation f32[n]) as numpy: examples 0..n-1 of the stream
    ``fold_in(key(seed), split_id)``, rendered in chunks of 256 (one compiled shape). A smaller
    n gives a prefix of a larger one."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {tuple(_SPLITS)}, got {split!r}")
    if not (isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0):
        raise ValueError(f"n must be a positive int, got {n!r}")
    key = jax.random.fold_in(jax.random.key(seed), _SPLITS[split])
    images = np.empty((n, CANVAS, CANVAS), np.uint8)
    hour, minute, rotation = np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n, np.float32)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        out = render_batch(key, _CHUNK, style, start) + (rotations(key, _CHUNK, style, start),)
        for dst, src in zip((images, hour, minute, rotation), out):
            dst[start:stop] = np.asarray(src)[: stop - start]
    return images, hour, minute, rotation


def clock_dataset(seed: int, n: int, style: ClockStyle = TRAIN_STYLE, split: str = "train"):
    """A fixed rendered dataset, deterministic in (seed, style, split); split is "train", "test"
    or "heldout" (three independent streams); a smaller n gives a prefix of a larger one.

    Returns {"x": f32[n, 150, 150, 1] in [0, 1], "hour": i32[n] in 0..11, "minute": i32[n],
    "rotation": f32[n] (radians, clockwise; see :func:`rotations`)}."""
    images, hour, minute, rotation = _dataset_uint8(seed, n, style, split)
    return {"x": (images.astype(np.float32) / 255.0)[..., None], "hour": hour, "minute": minute,
            "rotation": rotation}


def write_npy_dataset(directory: str, seed: int = 0, n: int = 18000, test_fraction: float = 0.2,
                      style: ClockStyle = TRAIN_STYLE, heldout_n: int = 0,
                      heldout_style: ClockStyle = HELDOUT_STYLE) -> dict[str, str]:
    """Writes {train,test}_{images,hours,minutes}.npy (images uint8[., 150, 150]) and meta.json.

    The train part is ``clock_dataset(seed, n - n_test, style, "train")`` and the test part
    ``clock_dataset(seed, n_test, style, "test")`` with ``n_test = round(n * test_fraction)``
    (pixels stored as uint8 = 255 * x). With heldout_n > 0 it also writes heldout_*.npy:
    ``clock_dataset(seed, heldout_n, heldout_style, "heldout")``. Only process 0 writes.
    Returns {"train_images": path, ...}."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 1:
        raise ValueError(f"n={n} with test_fraction={test_fraction} leaves an empty split")
    parts = [("train", n - n_test, style), ("test", n_test, style)]
    if heldout_n:
        parts.append(("heldout", heldout_n, heldout_style))
    writer = jax.process_index() == 0
    if writer:
        os.makedirs(directory, exist_ok=True)
    paths = {}
    for split, size, split_style in parts:
        images, hours, minutes, _ = _dataset_uint8(seed, size, split_style, split)
        for name, arr in zip(("images", "hours", "minutes"), (images, hours, minutes)):
            paths[f"{split}_{name}"] = os.path.join(directory, f"{split}_{name}.npy")
            if writer:
                np.save(paths[f"{split}_{name}"], arr)
    if writer:
        meta = {"seed": seed, "n": n, "n_test": n_test, "test_fraction": test_fraction,
                "style": dataclasses.asdict(style), "heldout_n": heldout_n,
                "heldout_style": dataclasses.asdict(heldout_style) if heldout_n else None}
        with open(os.path.join(directory, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
    return paths


def load_npy_dataset(directory: str, split: str = "train") -> dict[str, np.ndarray]:
    """Reads what :func:`write_npy_dataset` wrote, in :func:`clock_dataset`'s format."""
    arrays = {}
    for name in ("images", "hours", "minutes"):
        path = os.path.join(directory, f"{split}_{name}.npy")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} missing: write it with launch/render_clocks.py --out_dir={directory}")
        arrays[name] = np.load(path)
    return {"x": (arrays["images"].astype(np.float32) / 255.0)[..., None],
            "hour": arrays["hours"], "minute": arrays["minutes"]}


def _fmt(h, m) -> str:
    h = int(h) % 12
    return f"{12 if h == 0 else h}:{int(m):02d}"


def save_sample_grid(path: str, images, hours, minutes, predicted: Sequence[Any] | None = None,
                     cols: int = 6) -> None:
    """Writes a PNG grid of clocks titled with the true time (and ``pred`` time, red when wrong).

    images: [n, 150, 150] or [n, 150, 150, 1], uint8 or float in [0, 1]; predicted: None or a
    pair (hours, minutes) of length-n arrays. Uses matplotlib's Agg canvas (no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must be [n, H, W] or [n, H, W, 1], got shape {images.shape}")
    n = images.shape[0]
    hours, minutes = np.asarray(hours), np.asarray(minutes)
    if hours.shape != (n,) or minutes.shape != (n,):
        raise ValueError(f"hours {hours.shape} and minutes {minutes.shape} must both be ({n},)")
    if predicted is not None:
        ph, pm = (np.asarray(a) for a in predicted)
        if ph.shape != (n,) or pm.shape != (n,):
            raise ValueError(f"predicted hours {ph.shape} / minutes {pm.shape} must both be ({n},)")
    vmax = 255 if images.dtype == np.uint8 else 1.0
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(1.9 * cols, 2.1 * rows))
    FigureCanvasAgg(fig)
    for i in range(rows * cols):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=vmax)
        title, color = f"true {_fmt(hours[i], minutes[i])}", "black"
        if predicted is not None:
            title += f"\npred {_fmt(ph[i], pm[i])}"
            if int(ph[i]) % 12 != int(hours[i]) % 12 or int(pm[i]) != int(minutes[i]):
                color = "red"
        ax.set_title(title, fontsize=9, color=color)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=80)
