"""An independent analog-clock renderer, for evaluation only: PIL vector drawing, never used in training.

Why: a model scored only on render.py's clocks (signed distance functions in JAX) may have learned that
renderer rather than clocks. This module draws clocks another way: ``PIL.ImageDraw`` polygons, ellipses and
TrueType text on a 2x supersampled canvas, the face turned and tilted by one projective resampling, then lighting,
blur, noise and a real JPEG round trip, with its own design vocabulary of faces, numerals, ticks, 12-o'clock
marks, hands and backgrounds (jaxml/tasks/clock/README.md lists it).

Imports are numpy and PIL only (tests/test_clock_independent.py checks it): no code path is shared with the
training renderer. Geometry matches render.py's labels: a hand at clock angle theta (clockwise from 12,
hour hand ``(h + m / 60) * 30`` deg, minute hand ``6 m`` deg) points at ``theta + rotation`` clockwise from up
in the image (before the perspective warp). Two sets: "turned" (rotation uniform on 0-360 deg; every face
has numerals or a 12-o'clock mark, else the time is ambiguous) and "upright" (rotation within +-6 deg; cues
may be absent). Every clock is a pure function of (seed, index, set) on one install; its pixels may shift
slightly with the Pillow / FreeType / libjpeg versions. Needs Pillow >= 10.1 (``ImageFont.load_default(size=...)``).
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 150                 # output side in pixels (the models' input)
_SS = 2                    # supersampling factor of the drawing canvas
_S = SIZE * _SS
SETS = ("turned", "upright")
HANDS = ("arrow", "leaf", "baton")
NUMERALS = ("none", "arabic12", "arabic4", "roman12")
TICKS = ("none", "lines12", "lines60", "dots12", "diamonds12")
TOP_MARKS = ("none", "triangle", "double_bar", "dot", "word")
BEZELS = ("none", "flat", "double")
BACKGROUNDS = ("flat", "wood", "photo", "tiles")
_ROMAN = ("XII", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI")
_SET_IDS = {"turned": 0, "upright": 1}


def sample_design(rng: np.random.Generator, upright: bool) -> dict:
    """One clock's design and geometry (lengths as fractions of the dial radius unless noted)."""
    dark = rng.random() < 0.2
    face = rng.uniform(0.05, 0.25) if dark else rng.uniform(0.7, 1.0)
    ink = rng.uniform(0.8, 1.0) if dark else rng.uniform(0.0, 0.25)
    numerals = str(rng.choice(NUMERALS, p=[0.3, 0.35, 0.15, 0.2]))
    top_mark = str(rng.choice(TOP_MARKS, p=[0.4, 0.15, 0.15, 0.15, 0.15]))
    if not upright and numerals == "none" and top_mark == "none":
        top_mark = str(rng.choice(TOP_MARKS[1:]))
    hour_hand = str(rng.choice(HANDS))
    return {
        "rotation_deg": rng.uniform(-6.0, 6.0) if upright else rng.uniform(0.0, 360.0),
        "radius": rng.uniform(0.62, 0.92),            # of the half-canvas
        "offset": rng.uniform(-1, 1, 2),              # fraction of the free margin
        "bezel": str(rng.choice(BEZELS)), "bezel_width": rng.uniform(0.04, 0.14),
        "bezel_level": rng.uniform(0.0, 1.0),
        "face": face, "ink": ink,
        "numerals": numerals, "numeral_size": rng.uniform(0.14, 0.22),
        "ticks": str(rng.choice(TICKS)), "top_mark": top_mark,
        "hour_hand": hour_hand,
        "minute_hand": hour_hand if rng.random() < 0.75 else str(rng.choice(HANDS)),
        "hour_len": rng.uniform(0.42, 0.58), "minute_len": rng.uniform(0.7, 0.88),
        "hour_width": rng.uniform(0.06, 0.11), "minute_width": rng.uniform(0.035, 0.07),
        "tail": rng.uniform(0.0, 0.18),
        "second_hand": rng.random() < 0.6, "second_angle": rng.uniform(0.0, 360.0),
        "second_level": rng.uniform(0.3, 0.6),
        "background": str(rng.choice(BACKGROUNDS)), "background_level": rng.uniform(0.0, 1.0),
        "background_seed": int(rng.integers(2 ** 31)),
        "tilt": rng.uniform(0.0, 0.09),               # corner jitter of the perspective warp, of the canvas
        "tilt_seed": int(rng.integers(2 ** 31)),
        "ramp": rng.uniform(0.0, 0.35), "ramp_angle": rng.uniform(0.0, 2 * math.pi),
        "vignette": rng.uniform(0.0, 0.35), "highlight": rng.uniform(0.0, 0.3),
        "blur": rng.uniform(0.0, 1.1), "noise": rng.uniform(0.0, 0.04),
        "jpeg_quality": int(rng.integers(15, 90)) if rng.random() < 0.7 else 0,
        "noise_seed": int(rng.integers(2 ** 31)),
    }


def _grey(v: float) -> int:
    return int(round(255 * min(max(v, 0.0), 1.0)))


def _polar(cx, cy, angle_deg, dist):
    a = math.radians(angle_deg)
    return cx + dist * math.sin(a), cy - dist * math.cos(a)


def _hand_polygon(kind, cx, cy, angle, length, width, tail):
    """Outline of a hand pointing at ``angle`` (deg, clockwise from up): list of (x, y)."""
    a = math.radians(angle)
    ux, uy = math.sin(a), -math.cos(a)     # along the hand (image y down)
    vx, vy = -uy, ux                       # across

    def at(t, s):
        return cx + t * ux + s * vx, cy + t * uy + s * vy

    hw = width / 2
    if kind == "baton":
        return [at(-tail, -hw), at(length, -hw), at(length, hw), at(-tail, hw)]
    if kind == "leaf":  # a lens widest at 40 % of the length, pointed at both ends
        ts = np.linspace(-tail, length, 16)
        prof = [hw * 1.3 * math.sin(math.pi * min(max((t + tail) / (length + tail), 0), 1) ** 0.8)
                for t in ts]
        return [at(t, s) for t, s in zip(ts, prof)] + [at(t, -s) for t, s in zip(ts[::-1], prof[::-1])]
    # arrow: a shaft of 40 % width and a triangular head on the last 22 %
    head = length - 0.22 * length
    sw = 0.4 * hw
    return [at(-tail, -sw), at(head, -sw), at(head, -1.7 * hw), at(length, 0), at(head, 1.7 * hw),
            at(head, sw), at(-tail, sw)]


def _font(px: float):
    return ImageFont.load_default(size=max(6, int(round(px))))


def _draw_face(d: dict, hour: int, minute: int):
    """The dial upright (12 up) on a transparent canvas: (LA image _S x _S, centre (cx, cy))."""
    half = _S / 2
    R = d["radius"] * half
    margin = half - R
    cx, cy = half + d["offset"][0] * margin, half + d["offset"][1] * margin
    img = Image.new("LA", (_S, _S), (0, 0))
    g = ImageDraw.Draw(img)
    box = [cx - R, cy - R, cx + R, cy + R]
    ink = _grey(d["ink"])
    if d["bezel"] == "none":
        g.ellipse(box, fill=(_grey(d["face"]), 255), outline=(ink, 255), width=max(2, int(0.015 * R)))
        rf = R * 0.985
    else:
        g.ellipse(box, fill=(_grey(d["bezel_level"]), 255))
        rf = R * (1 - d["bezel_width"])
        if d["bezel"] == "double":
            r2 = R * (1 - 0.5 * d["bezel_width"])
            g.ellipse([cx - r2, cy - r2, cx + r2, cy + r2], outline=(_grey(1 - d["bezel_level"]), 255),
                      width=max(2, int(0.012 * R)))
        g.ellipse([cx - rf, cy - rf, cx + rf, cy + rf], fill=(_grey(d["face"]), 255))
    lw = max(2, int(0.02 * rf))
    for k in range(60 if d["ticks"] == "lines60" else 12):
        ang = k * (6 if d["ticks"] == "lines60" else 30)
        major = d["ticks"] != "lines60" or k % 5 == 0
        if d["ticks"] in ("lines12", "lines60"):
            inner = rf * (0.86 if major else 0.92)
            g.line([_polar(cx, cy, ang, inner), _polar(cx, cy, ang, rf * 0.96)], fill=(ink, 255),
                   width=lw * (2 if major else 1))
        elif d["ticks"] == "dots12":
            x, y = _polar(cx, cy, ang, rf * 0.9)
            s = 0.035 * rf
            g.ellipse([x - s, y - s, x + s, y + s], fill=(ink, 255))
        elif d["ticks"] == "diamonds12":
            pts = [_polar(cx, cy, ang, rf * 0.84), _polar(cx, cy, ang + 2.2, rf * 0.9),
                   _polar(cx, cy, ang, rf * 0.96), _polar(cx, cy, ang - 2.2, rf * 0.9)]
            g.polygon(pts, fill=(ink, 255))
    if d["numerals"] != "none":
        font = _font(d["numeral_size"] * rf)
        r_num = rf * (0.7 if d["ticks"] != "none" else 0.8)
        hours = (12, 3, 6, 9) if d["numerals"] == "arabic4" else range(1, 13)
        for h in hours:
            text = _ROMAN[h % 12] if d["numerals"] == "roman12" else str(h)
            g.text(_polar(cx, cy, 30 * h, r_num), text, fill=(ink, 255), font=font, anchor="mm")
    mark = d["top_mark"]
    top = rf * (0.55 if d["numerals"] != "none" else 0.8)
    if mark == "triangle":
        g.polygon([_polar(cx, cy, 0, top - 0.12 * rf), _polar(cx, cy, 5, top + 0.02 * rf),
                   _polar(cx, cy, -5, top + 0.02 * rf)], fill=(ink, 255))
    elif mark == "double_bar":
        for dx in (-0.035 * rf, 0.035 * rf):
            g.line([(cx + dx, cy - top - 0.06 * rf), (cx + dx, cy - top + 0.06 * rf)], fill=(ink, 255),
                   width=lw * 2)
    elif mark == "dot":
        x, y = _polar(cx, cy, 0, top)
        s = 0.06 * rf
        g.ellipse([x - s, y - s, x + s, y + s], fill=(ink, 255))
    elif mark == "word":
        g.text((cx, cy - 0.35 * rf), "QUARTZ", fill=(ink, 255), font=_font(0.11 * rf), anchor="mm")
    hands = [("hour_hand", (hour % 12 + minute / 60) * 30, d["hour_len"], d["hour_width"]),
             ("minute_hand", minute * 6, d["minute_len"], d["minute_width"])]
    for kind, ang, length, width in hands:
        g.polygon(_hand_polygon(d[kind], cx, cy, ang, length * rf, max(width * rf, 4.5), d["tail"] * rf),
                  fill=(ink, 255))
    if d["second_hand"]:
        sl = _grey(d["second_level"])
        g.line([_polar(cx, cy, d["second_angle"] + 180, 0.2 * rf), _polar(cx, cy, d["second_angle"], 0.9 * rf)],
               fill=(sl, 255), width=max(3, int(0.012 * rf)))
    cap = max(0.045 * rf, 4.0)
    g.ellipse([cx - cap, cy - cap, cx + cap, cy + cap], fill=(ink, 255))
    return img, (cx, cy)


def _background(d: dict) -> np.ndarray:
    """f32[_S, _S] in [0, 1]."""
    rng = np.random.default_rng(d["background_seed"])
    x, y = (_GRID_X + 1) / 2, (_GRID_Y + 1) / 2
    level = d["background_level"]
    kind = d["background"]
    if kind == "flat":
        return np.full((_S, _S), level, np.float32)
    if kind == "wood":
        a = rng.uniform(0, math.pi)
        u = x * math.cos(a) + y * math.sin(a)
        warp = 0.03 * np.sin(2 * math.pi * (x * math.sin(a) - y * math.cos(a)) * rng.uniform(1, 3))
        bg = level + 0.12 * np.sin(2 * math.pi * (u + warp) * rng.uniform(8, 20))
        return np.clip(bg, 0, 1).astype(np.float32)
    if kind == "tiles":
        n = rng.integers(3, 8)
        grout = (np.abs(((x * n) % 1) - 0.5) > 0.46) | (np.abs(((y * n) % 1) - 0.5) > 0.46)
        return np.where(grout, 1 - level, level).astype(np.float32)
    # photo: a smooth random field plus a few blurred shapes (a room behind the clock)
    coarse = Image.fromarray((rng.uniform(0, 1, (5, 5)) * 255).astype(np.uint8)).resize((_S, _S), Image.BICUBIC)
    img = Image.blend(Image.new("L", (_S, _S), _grey(level)), coarse, 0.5)
    dr = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = rng.uniform(-0.2, 1, 2) * _S
        w, h = rng.uniform(0.1, 0.6, 2) * _S
        shape = dr.rectangle if rng.random() < 0.6 else dr.ellipse
        shape([x0, y0, x0 + w, y0 + h], fill=int(rng.integers(0, 256)))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(2, 8) * _SS))
    return np.asarray(img, np.float32) / 255


def _homography(src, dst):
    """3x3 matrix H with H (x, y, 1) ~ (u, v, 1) for the 4 point pairs (x, y) in dst -> (u, v) in src."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def _turn_and_tilt(design, centre):
    """PIL PERSPECTIVE coefficients (output pixel -> dial pixel): the dial turned clockwise by the rotation
    about its centre, then the canvas corners moved by up to ``tilt`` of the side (a projective tilt)."""
    cx, cy = centre
    rho = math.radians(design["rotation_deg"])
    c, s = math.cos(rho), math.sin(rho)
    # inverse of the clockwise turn (image y down): upright = R^-1 (turned - centre) + centre
    unturn = np.array([[c, s, cx - c * cx - s * cy], [-s, c, cy + s * cx - c * cy], [0, 0, 1]])
    untilt = np.eye(3)
    if design["tilt"] > 0:
        rng = np.random.default_rng(design["tilt_seed"])
        corners = [(0, 0), (_S, 0), (_S, _S), (0, _S)]
        shifts = rng.uniform(-1, 1, (4, 2)) * design["tilt"] * _S
        moved = [(x + dx, y + dy) for (x, y), (dx, dy) in zip(corners, shifts)]
        untilt = _homography(corners, moved)
    m = unturn @ untilt
    return (m / m[2, 2]).ravel()[:8].tolist()


_GRID_Y, _GRID_X = (np.mgrid[0:_S, 0:_S] - (_S - 1) / 2) / (_S / 2)


def draw_clock(design: dict, hour: int, minute: int) -> np.ndarray:
    """The clock of ``design`` showing hour:minute, uint8[150, 150]."""
    dial, centre = _draw_face(design, int(hour), int(minute))
    dial = dial.transform((_S, _S), Image.PERSPECTIVE, _turn_and_tilt(design, centre), Image.BICUBIC)
    grey, alpha = (np.asarray(b, np.float32) / 255 for b in dial.split())
    img = _background(design) * (1 - alpha) + grey * alpha
    x, y = _GRID_X, _GRID_Y
    ra = design["ramp_angle"]
    img = img * (1 + design["ramp"] * (x * math.cos(ra) + y * math.sin(ra)) / 2)
    img = img * (1 - design["vignette"] * (x * x + y * y) / 2)
    hx, hy = -0.35, -0.4                            # a glass highlight, upper left
    img = img + design["highlight"] * np.exp(-(((x - hx) / 0.35) ** 2 + ((y - hy) / 0.18) ** 2))
    out = Image.fromarray(np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.LANCZOS)
    if design["blur"] > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(design["blur"]))
    pix = np.asarray(out, np.float32) / 255
    pix = pix + design["noise"] * np.random.default_rng(design["noise_seed"]).standard_normal(pix.shape)
    out = Image.fromarray(np.round(np.clip(pix, 0, 1) * 255).astype(np.uint8))
    if design["jpeg_quality"]:
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=design["jpeg_quality"])
        out = Image.open(io.BytesIO(buf.getvalue())).convert("L")
    return np.asarray(out, np.uint8)


def _check(seed, which):
    if which not in SETS:
        raise ValueError(f"independent clocks: set must be one of {SETS}, got {which!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"independent clocks: seed must be a non-negative int, got {seed!r}")


def independent_clock(seed: int, index: int, which: str = "turned"):
    """Clock ``index`` of the set ``which`` ("turned" or "upright") of ``seed``:
    (image uint8[150, 150], hour in 0..11, minute in 0..59, rotation in radians clockwise, design dict)."""
    _check(seed, which)
    rng = np.random.default_rng([int(seed), _SET_IDS[which], int(index)])
    hour, minute = int(rng.integers(12)), int(rng.integers(60))
    design = sample_design(rng, upright=which == "upright")
    return draw_clock(design, hour, minute), hour, minute, math.radians(design["rotation_deg"]), design


def independent_set(seed: int, n: int, which: str = "turned") -> dict:
    """Clocks 0..n-1 of the set ``which``: {"images": uint8[n, 150, 150], "hour", "minute": i32[n],
    "rotation": f32[n]} (a smaller n gives a prefix of a larger one)."""
    _check(seed, which)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"independent clocks: n must be a positive int, got {n!r}")
    clocks = [independent_clock(seed, i, which) for i in range(n)]
    return {"images": np.stack([c[0] for c in clocks]), "hour": np.array([c[1] for c in clocks], np.int32),
            "minute": np.array([c[2] for c in clocks], np.int32),
            "rotation": np.array([c[3] for c in clocks], np.float32)}
