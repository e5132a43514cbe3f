"""Read the time off a picture a user brings, with a trained clock run.

    python launch/read_clock.py --image=PATH --workdir=RUN [--step=N] [--crop=center|none]

prints ``3:40  confidence 0.97`` (and a JSON line). As a function: ``read_clock(image, workdir)`` with a path,
a PIL image or an array; or build a :class:`ClockReader` once and call it on many images.

The picture is turned to greyscale (EXIF orientation applied), cropped to its central square (``crop="none"``:
squashed instead), resized to 150 x 150 (Lanczos) and preprocessed as the run's inputs were (the run's
``config.json``). The clock should fill most of the square, as in training (radius 55-95 % of the half side).

Confidence, in [0, 1], is how sure the heads are, not a calibrated probability: for ``abs_angles`` and
``angles`` (unit-vector targets: a regression's output shrinks towards 0 where the reading is ambiguous) the
smallest length of the predicted (cos, sin) pairs, clipped to 1; for class heads the product of the hour's and
the minute's top softmax probabilities.
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import flags
from PIL import Image, ImageOps

from jaxml.cli import common
from jaxml.tasks.clock.objectives import DECODERS
from jaxml.tasks.clock.preprocessing import preprocess
from jaxml.tasks.clock.styles import CANVAS
from jaxml.train import loop
from jaxml.train.custom import predict_fn

CROPS = ("center", "none")


def load_image(image) -> np.ndarray:
    """A path, PIL image or array (H x W grey, H x W x 3/4 colour; uint8, or float in [0, 1]) as uint8[H, W]."""
    if isinstance(image, (str, os.PathLike)):
        if not os.path.exists(image):
            raise FileNotFoundError(f"read_clock: no image at {image}")
        with Image.open(image) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("L"), np.uint8)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("L"), np.uint8)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma
        a = np.round(a).astype(np.uint8) if np.asarray(image).dtype == np.uint8 else a
    if a.ndim != 2:
        raise ValueError(f"read_clock: an image must be H x W, H x W x 1, 3 or 4; got shape {np.shape(image)}")
    if a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 1:
            raise ValueError("read_clock: a float image must hold pixels in [0, 1]")
        a = np.round(a * 255).astype(np.uint8)
    return a


def to_input(pixels: np.ndarray, crop: str = "center") -> np.ndarray:
    """uint8[H, W] -> uint8[150, 150]: its central square (crop="center") or all of it ("none"), resized."""
    if crop not in CROPS:
        raise ValueError(f"read_clock: crop must be one of {CROPS}, got {crop!r}")
    h, w = pixels.shape
    if crop == "center":
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        pixels = pixels[top:top + s, left:left + s]
    if pixels.shape == (CANVAS, CANVAS):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((CANVAS, CANVAS), Image.LANCZOS), np.uint8)


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run was trained with (``<workdir>/config.json``, written by the training loop)."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"read_clock: {path} missing: is {workdir} a trained clock run's workdir?")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def confidence(outputs: dict) -> np.ndarray:
    """f32[b] in [0, 1] (see the module docstring)."""
    if "hour" in outputs:
        return np.asarray(jnp.max(jax.nn.softmax(outputs["hour"]), -1) * jnp.max(jax.nn.softmax(outputs["minute"]), -1))
    a = np.asarray(outputs["abs_angles"] if "abs_angles" in outputs else outputs["angles"])
    lengths = np.linalg.norm(a.reshape(a.shape[0], -1, 2), axis=-1)
    return np.clip(lengths.min(-1), 0.0, 1.0)


class ClockReader:
    """A trained run, restored once: ``reader(image) -> {"hour", "minute", "time", "confidence"}``."""

    def __init__(self, workdir: str, step: int | None = None, config=None):
        self.config = load_run_config(workdir) if config is None else config
        if self.config.get("objective") not in ("clock_absolute", "clock_periodic", "clock_heads"):
            raise ValueError(f"read_clock: {workdir} is not a clock run (objective {self.config.get('objective')!r})")
        model, driver, state = loop.restore_trained(self.config, workdir, (CANVAS, CANVAS, 1), step)
        self.step = int(driver.fetch(state.step))
        self._prep = preprocess(self.config)
        self._params, self._model_state = driver.fetch(state.params), driver.fetch(state.model_state)
        self._predict = predict_fn(model, batch_size=64)       # params are arguments, not baked-in constants

    def outputs(self, images_uint8: np.ndarray) -> dict:
        """The model's heads on uint8[b, 150, 150] clocks (preprocessed as in training)."""
        return self.model_outputs(self._prep(jnp.asarray(images_uint8, jnp.float32)[..., None] / 255.0))

    def model_outputs(self, x) -> dict:
        """The model's heads (host numpy) on already preprocessed inputs f32[b, 150, 150, 1]."""
        return self._predict(self._params, self._model_state, np.asarray(x))

    def __call__(self, image, crop: str = "center") -> dict:
        pixels = to_input(load_image(image), crop)
        out = self.outputs(pixels[None])
        decode = next(DECODERS[head] for head in DECODERS if head in out)
        hour, minute = (int(np.asarray(v)[0]) for v in decode(jax.tree.map(jnp.asarray, out)))
        return {"hour": hour, "minute": minute, "time": f"{12 if hour % 12 == 0 else hour % 12}:{minute:02d}",
                "confidence": float(confidence(out)[0])}


def read_clock(image, workdir: str | None = None, *, reader: ClockReader | None = None, step: int | None = None,
               crop: str = "center") -> dict:
    """The time on ``image`` (a path, PIL image or array) read by the run in ``workdir`` (or ``reader``):
    {"hour" 0..11, "minute", "time" "h:mm" (12 for 0), "confidence" in [0, 1]}."""
    if reader is None:
        if workdir is None:
            raise ValueError("read_clock: pass workdir (a trained run) or reader")
        reader = ClockReader(workdir, step)
    return reader(image, crop)


def _define_flags() -> None:
    """The command line's flags, defined only when it runs (importing the module as a library defines none)."""
    flags.DEFINE_string("image", None, "A photo or drawing of an analog clock (PNG, JPEG, ...).")
    flags.DEFINE_string("workdir", None, "A trained clock run's workdir.")
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
    flags.DEFINE_enum("crop", "center", list(CROPS), "center: the central square; none: squash to square.")


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    if not f.image or not f.workdir:
        raise ValueError("--image and --workdir are required")
    result = read_clock(f.image, f.workdir, step=f.step, crop=f.crop)
    print(f"{result['time']}  confidence {result['confidence']:.2f}")
    print(json.dumps({"script": "read_clock", "image": f.image, **result}))


def run():
    _define_flags()
    common.run(main)


if __name__ == "__main__":
    run()
