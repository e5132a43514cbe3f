"""Clock styles: the ranges every per-image parameter of a rendered clock is drawn from.

A :class:`ClockStyle` holds the ranges (lo, hi) every per-image parameter is drawn from (uniform), and the
allowed discrete choices (tick style, hand shape). It is static (hashable) under ``jit``. ``TRAIN_STYLE`` and
``HELDOUT_STYLE`` have *disjoint* tick styles (lines, bars, squares or none / round dots), hand shapes
(rectangular, rounded, flared, lancet / sharply tapered), lighting gradient and contrast ranges, and heavier
blur/noise in the held-out set, so a model trained on the first can be scored on clock designs it never saw.
``WIDE_STYLE`` adds a wider vocabulary (upright faces, numeral-like glyphs, a bar or no 12-o'clock mark,
second hands, clutter, dark and squashed faces; fields ``upright_prob`` .. ``tone_gamma``, drawn from their own
key so a plain style's draws are unchanged). ``CANONICAL_STYLE`` is an upright, centred, noiseless clock for
tests. :func:`sample_clock_params` draws one
image's parameters (lengths in pixels of the ``CANVAS`` x ``CANVAS`` image) from a style.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

CANVAS = 150          # image side in pixels
_HALF = CANVAS / 2.0  # half-canvas; clock radius is a fraction of it

# Tick styles: 12 hour lines; plus 48 minute lines; 12 round dots; 12 dots plus 48 small ones; lines at
# 3, 6 and 9 only; no ticks (rim and 12-o'clock marker alone); 12 thick bars (twice a line's width); 12
# squares (the area of a dot of dots12: compact blobs with corners).
TICK_STYLES = ("lines12", "lines60", "dots12", "dots60", "lines4", "none", "bars12", "squares12")
HAND_SHAPES = ("rect", "tapered", "rounded", "flared", "lancet")


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
    # The wider vocabulary (WIDE_STYLE); the defaults draw none of it, and then the renderer traces none of it
    # (a default clock is the same image, bit for bit, as before these fields existed).
    upright_prob: float = 0.0                          # P(rotation drawn from upright_deg instead)
    upright_deg: tuple[float, float] = (-8.0, 8.0)
    marker_probs: tuple[float, float] = (1.0, 0.0)     # P(12-o'clock triangle), P(long bar at 12); else none
    numeral_prob: float = 0.0                          # P(numeral-like glyph blocks at the 12 hours)
    second_hand_prob: float = 0.0                      # P(a thin second hand at a random angle: a distractor)
    invert_prob: float = 0.0                           # P(dark face, light ink)
    clutter: int = 0                                   # random bars/blobs drawn behind the face (static count)
    texture: tuple[float, float] = (0.0, 0.0)          # amplitude of two gratings on the background
    aspect: tuple[float, float] = (1.0, 1.0)           # squash along a random axis (the face becomes an ellipse)
    tone_gamma: tuple[float, float] = (1.0, 1.0)       # pixel tone curve y = x ** gamma (augmentation)

    @property
    def extended(self) -> bool:
        """Whether any of the wider vocabulary is drawn (static: the renderer traces it only then)."""
        return self != dataclasses.replace(self, **_PLAIN_EXTRAS)

    def __post_init__(self):
        for name in ("upright_prob", "numeral_prob", "second_hand_prob", "invert_prob"):
            v = getattr(self, name)
            if not isinstance(v, numbers.Real) or not 0.0 <= v <= 1.0:
                raise ValueError(f"ClockStyle.{name} must be a probability in [0, 1], got {v!r}")
        if not isinstance(self.clutter, int) or isinstance(self.clutter, bool) or not 0 <= self.clutter <= 8:
            raise ValueError(f"ClockStyle.clutter must be an int in 0..8, got {self.clutter!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("offset_frac", "hand_shapes", "tick_styles", "clutter") or f.name in _PROBS:
                continue
            if f.name == "marker_probs":  # two probabilities, not a range
                if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, numbers.Real) for x in v)):
                    raise ValueError(f"ClockStyle.marker_probs must be a tuple (P(triangle), P(bar)), got {v!r}")
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
            (self.marker_probs[0] >= 0 and self.marker_probs[1] >= 0 and sum(self.marker_probs) <= 1.0,
             "marker_probs (P(triangle), P(bar)) must be >= 0 with a sum <= 1"),
            (0.5 <= self.aspect[0] and self.aspect[1] <= 1.0, "aspect must lie in [0.5, 1]"),
            (0.2 <= self.tone_gamma[0] and self.tone_gamma[1] <= 5.0, "tone_gamma must lie in [0.2, 5]"),
            (self.texture[0] >= 0.0, "texture must be >= 0"),
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


_PROBS = ("upright_prob", "numeral_prob", "second_hand_prob", "invert_prob")
_PLAIN_EXTRAS = {"upright_prob": 0.0, "marker_probs": (1.0, 0.0), "numeral_prob": 0.0, "second_hand_prob": 0.0,
                 "invert_prob": 0.0, "clutter": 0, "texture": (0.0, 0.0), "aspect": (1.0, 1.0),
                 "tone_gamma": (1.0, 1.0)}
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
# Far wider training designs (configs/clock.py:wide): upright faces as a common case, the 12 o'clock told by a
# triangle, a long bar, numeral-like glyph blocks or (upright) nothing, a second hand as a distractor, dark
# faces, background clutter and texture, squashed faces, a tone curve, wider geometry and the held-out lighting
# ranges. Still never the held-out designs (dot ticks, tapered hands).
WIDE_STYLE = dataclasses.replace(
    TRAIN_STYLE, radius_frac=(0.55, 0.95), hour_width=(0.05, 0.12), minute_width=(0.02, 0.045),
    hand_tail=(0.0, 0.25), rim_width=(0.01, 0.12), gradient=(0.0, 0.5), contrast=(0.5, 1.0),
    blur_sigma=(0.0, 1.3), noise_std=(0.0, 0.05), upright_prob=0.4, marker_probs=(0.35, 0.25),
    numeral_prob=0.5, second_hand_prob=0.5, invert_prob=0.2, clutter=4, texture=(0.0, 0.15),
    aspect=(0.8, 1.0), tone_gamma=(0.6, 1.6))
STYLES = {"train": TRAIN_STYLE, "heldout": HELDOUT_STYLE, "canonical": CANONICAL_STYLE, "wide": WIDE_STYLE}


# The ranges sample_clock_params draws a plain style's parameters from.
RANGES = ("rotation_deg", "radius_frac", "hour_len", "minute_len", "hour_width", "minute_width", "hand_tail",
          "tick_len", "tick_width", "rim_width", "marker_len", "marker_width", "face_level", "background_level",
          "ink_level", "gradient", "contrast", "blur_sigma", "noise_std")


def _numbers(style: ClockStyle) -> dict:
    """What :func:`sample_clock_params` reads of a plain style: each range as (lo, hi - lo), offset_frac, and the
    ids of the allowed hand shapes and tick styles with their count."""
    v = {name: (getattr(style, name)[0], getattr(style, name)[1] - getattr(style, name)[0]) for name in RANGES}
    v["offset_frac"] = style.offset_frac
    v["hand_shape_ids"] = [HAND_SHAPES.index(s) for s in style.hand_shapes]
    v["tick_style_ids"] = [TICK_STYLES.index(s) for s in style.tick_styles]
    v["hand_shape_count"], v["tick_style_count"] = len(style.hand_shapes), len(style.tick_styles)
    return v


def style_values(style: ClockStyle) -> dict:
    """A plain style's numbers as numpy f32 / i32 (ids padded to full length): passed to a jitted renderer as
    arguments, not constants, so one compiled program draws every plain style. Why: compiling the renderer costs
    seconds, drawing a clock ~1 ms. The same draws as the static style, up to XLA's folding of constants (README)."""
    if style.extended:
        raise ValueError("style_values: an extended style is drawn by a program of its own (pass it static)")
    v = _numbers(style)
    out = {name: (np.float32(lo), np.float32(span)) for name, (lo, span) in ((n, v[n]) for n in RANGES)}
    out["offset_frac"] = np.float32(v["offset_frac"])
    for name, full in (("hand_shape", HAND_SHAPES), ("tick_style", TICK_STYLES)):
        ids = v[f"{name}_ids"]
        out[f"{name}_ids"] = np.array(ids + [ids[-1]] * (len(full) - len(ids)), np.int32)
        out[f"{name}_count"] = np.int32(len(ids))
    return out


def sample_clock_params(key: jax.Array, style) -> dict[str, jax.Array]:
    """Draws one image's scalar parameters from ``style`` (all f32 scalars; lengths in pixels): a ClockStyle, or
    a plain one's :func:`style_values` (the same draws)."""
    names = ["rotation", "radius", "off_x", "off_y", "hour_len", "minute_len", "hour_width",
             "minute_width", "tail", "tick_len", "tick_width", "rim_width", "marker_len",
             "marker_width", "face", "background", "ink", "gradient", "grad_angle", "contrast",
             "blur_sigma", "noise_std"]
    u = dict(zip(names, jax.random.uniform(key, (len(names),))))
    k_shape, k_tick = jax.random.split(jax.random.fold_in(key, 1))

    constants = isinstance(style, ClockStyle)
    v = _numbers(style) if constants else style

    def draw(name, field):
        lo, span = v[field]
        return lo + span * u[name]

    radius = draw("radius", "radius_frac") * _HALF
    margin = v["offset_frac"] * (_HALF - radius)
    p = {"rotation": jnp.deg2rad(draw("rotation", "rotation_deg")), "radius": radius,
         "off_x": (2 * u["off_x"] - 1) * margin, "off_y": (2 * u["off_y"] - 1) * margin,
         "grad_angle": 2 * jnp.pi * u["grad_angle"]}
    for name, field in [("hour_len", "hour_len"), ("minute_len", "minute_len"),
                        ("hour_width", "hour_width"), ("minute_width", "minute_width"),
                        ("tail", "hand_tail"), ("tick_len", "tick_len"), ("tick_width", "tick_width"),
                        ("rim_width", "rim_width"), ("marker_len", "marker_len"),
                        ("marker_width", "marker_width")]:
        p[name] = draw(name, field) * radius
    for name, field in [("face", "face_level"), ("background", "background_level"),
                        ("ink", "ink_level"), ("gradient", "gradient"), ("contrast", "contrast"),
                        ("blur_sigma", "blur_sigma"), ("noise_std", "noise_std")]:
        p[name] = draw(name, field)
    # jax.random.choice(k, ids) spelled out, so that the ids (padded) and their count may be traced
    for name, k in (("hand_shape", k_shape), ("tick_style", k_tick)):
        ids, count = v[f"{name}_ids"], v[f"{name}_count"]
        p[name] = jnp.take(jnp.asarray(ids, jnp.int32), jax.random.randint(k, (), 0, count))
    if constants and style.extended:  # static; its own key, so the draws above stay those of a plain style
        p.update(_sample_extras(jax.random.fold_in(key, 2), style, p))
    return p


def _sample_extras(key, style: ClockStyle, p) -> dict[str, jax.Array]:
    """The wider vocabulary's per-image parameters. A turned face (not upright) always shows a cue for 12
    o'clock (a marker or numerals): without one its time is ambiguous. Face and ink swap on inverted faces."""
    names = ["upright", "up_rot", "marker", "numerals", "second", "second_angle", "second_len", "second_level",
             "invert", "tex_amp", "tex_a1", "tex_a2", "tex_f1", "tex_f2", "tex_p1", "tex_p2", "aspect",
             "aspect_angle", "gamma", "glyph_seed", "glyph_size"]
    u = dict(zip(names, jax.random.uniform(key, (len(names),))))
    upright = u["upright"] < style.upright_prob
    numerals = u["numerals"] < style.numeral_prob
    marker = jnp.where(u["marker"] < style.marker_probs[0], 0,
                       jnp.where(u["marker"] < style.marker_probs[0] + style.marker_probs[1], 1, 2))
    marker = jnp.where(~upright & ~numerals & (marker == 2), 0, marker)   # 0 triangle, 1 bar, 2 none
    lo, hi = style.upright_deg
    rotation = jnp.where(upright, jnp.deg2rad(lo + (hi - lo) * u["up_rot"]), p["rotation"])
    invert = u["invert"] < style.invert_prob
    c = jax.random.uniform(jax.random.fold_in(key, 1), (max(style.clutter, 1), 7))
    return {
        "rotation": jnp.mod(rotation, 2 * jnp.pi), "upright": upright, "marker_kind": marker,
        "numerals": numerals, "glyph_seed": (u["glyph_seed"] * 2 ** 24).astype(jnp.uint32),
        "glyph_size": (0.1 + 0.07 * u["glyph_size"]) * p["radius"],
        "second": u["second"] < style.second_hand_prob, "second_angle": 2 * jnp.pi * u["second_angle"],
        "second_len": (0.8 + 0.15 * u["second_len"]) * p["radius"], "second_level": 0.25 + 0.5 * u["second_level"],
        "face": jnp.where(invert, p["ink"], p["face"]), "ink": jnp.where(invert, p["face"], p["ink"]),
        "texture": style.texture[0] + (style.texture[1] - style.texture[0]) * u["tex_amp"],
        "tex_angles": 2 * jnp.pi * jnp.stack([u["tex_a1"], u["tex_a2"]]),
        "tex_freqs": 0.05 + 0.4 * jnp.stack([u["tex_f1"], u["tex_f2"]]),
        "tex_phases": 2 * jnp.pi * jnp.stack([u["tex_p1"], u["tex_p2"]]),
        "aspect": style.aspect[0] + (style.aspect[1] - style.aspect[0]) * u["aspect"],
        "aspect_angle": jnp.pi * u["aspect_angle"],
        "gamma": style.tone_gamma[0] * (style.tone_gamma[1] / style.tone_gamma[0]) ** u["gamma"],  # log-uniform
        "clutter": c,   # per shape: centre x, y, half-sizes a, b, angle, grey level, kind (box / disc)
    }
