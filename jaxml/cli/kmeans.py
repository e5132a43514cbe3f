"""K-means from the command line: an image's colour palette, or the clusters of a .npy/.csv matrix.

    python launch/kmeans.py --image=photo.jpg --k=5 [--auto_k] [--thumbnail=200x400] [--out=swatch.png]
        prints ``#rrggbb  0.4213`` per colour, largest cluster first, and writes a swatch PNG to the current
        folder (``photo_palette.png``: never beside an image that may sit in a read-only or installed folder)
        or to --out. Fully transparent pixels (alpha = 0) of an image with
        transparency are skipped (``jaxml.kmeans.palette``).
    python launch/kmeans.py --data=X.npy|X.csv [--header] --k=8 [--auto_k] [--out=clusters.npz]
        prints one line per cluster (share, centre), largest first; --out saves centers and labels.
        A CSV has no header unless --header says its first line is one; a non-numeric first line without
        --header fails naming it.

The output path is checked before any work: its folder must exist and be writable, it must not be the input
file, a dangling symbolic link, or an existing file this command did not write (a tagged swatch PNG, a
centers/labels .npz) unless --overwrite says so; nothing is overwritten then. With several devices
(``--num_cpu_devices=N`` fakes N on a CPU) the points are split over a ``data`` mesh. Fails with exit status 1
and the reason on the last line (k > distinct points, NaN/inf, an unreadable file, a bad output path).
"""
from __future__ import annotations

import os
import sys

import jax
import numpy as np
from absl import flags
from jax.experimental import multihost_utils
from PIL import Image

from jaxml.cli import common
from jaxml.kmeans import kmeans, kmeans_auto_k
from jaxml.kmeans import palette as pal
from jaxml.parallel import data_mesh

_IMAGE = flags.DEFINE_string("image", None, "Image file whose colour palette to extract.")
_DATA = flags.DEFINE_string("data", None, "A .npy or .csv matrix [n_points, n_features] to cluster.")
_K = flags.DEFINE_integer("k", 5, "Number of clusters (the maximum k with --auto_k unless --k_max).")
_AUTO_K = flags.DEFINE_bool("auto_k", False, "Choose k <= --k_max automatically.")
_K_MAX = flags.DEFINE_integer("k_max", 10, "Largest k tried by --auto_k.")
_CRITERION = flags.DEFINE_enum("criterion", "ch", ["ch", "drop"], "Rule of --auto_k (Calinski-Harabasz or drop).")
_THUMB = flags.DEFINE_string("thumbnail", "200x400", "Shrink the image to fit WIDTHxHEIGHT first ('' = keep).")
_N_INIT = flags.DEFINE_integer("n_init", 4, "k-means++ restarts (run together under vmap).")
_MAX_ITER = flags.DEFINE_integer("max_iter", 300, "Lloyd iterations at most.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the initialisation.")
_OUT = flags.DEFINE_string("out", None, "Swatch PNG (image mode) or .npz of centers/labels (data mode).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --out file that this command did not write.")
_HEADER = flags.DEFINE_bool("header", False, "The --data CSV's first line is a header (skipped).")
flags.adopt_module_key_flags(common)


def _first_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\r\n")


def _numeric(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
    except ValueError:
        return False
    return True


def _bad_csv_line(path: str, header: bool) -> str:
    """Slow path after np.loadtxt refused a CSV: the first bad line (1-based, as an editor counts), or ''."""
    width = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip()
            if (header and number == 1) or not line or line.startswith("#"):
                continue
            fields = line.split(",")
            if width is None:
                width = len(fields)
            elif len(fields) != width:
                return f"line {number} has {len(fields)} fields, the rows before it {width}"
            for j, v in enumerate(fields, start=1):
                try:
                    float(v)
                except ValueError:
                    return f"line {number}, field {j}: {v.strip()[:40]!r} is not a number"
    return ""


def load_matrix(path: str, header: bool = False):
    """[n, d] from a .npy or a comma-separated .csv (float64; ``header``: skip its first line)."""
    if not os.path.isfile(path):
        raise ValueError(f"data file {path!r} does not exist")
    try:
        if path.endswith(".npy"):
            x = np.load(path, allow_pickle=False)
        elif path.endswith(".csv"):
            if not header and not _numeric(_first_line(path)):
                raise ValueError(f"line 1 is not numeric ({_first_line(path)[:80]!r}); if it is a header, "
                                 "pass --header")
            try:
                x = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64, skiprows=int(header))
            except ValueError as e:
                raise ValueError(_bad_csv_line(path, header) or str(e)) from None
        else:
            raise ValueError(f"data file {path!r} must end in .npy or .csv")
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read data file {path!r}: {e}") from None
    if x.ndim == 1:
        x = x[:, None]
    return x


def _same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


SWATCH_TAG = "jaxml kmeans palette swatch"


def written_here(path: str) -> bool:
    """Whether the file at ``path`` is an output of this command: a swatch PNG carrying ``SWATCH_TAG``, or an
    .npz holding exactly ``centers`` and ``labels``."""
    try:
        if path.endswith(".npz"):
            with np.load(path) as z:
                return sorted(z.files) == ["centers", "labels"]
        with Image.open(path) as img:
            return img.info.get("Software") == SWATCH_TAG
    except Exception:  # noqa: BLE001 — unreadable: not ours
        return False


def check_output(out: str, inputs: tuple[str, ...], what: str, overwrite: bool = False) -> None:
    """Fail before any work unless ``out`` can be written without touching an input: its folder exists and is
    writable, it is not a folder, none of ``inputs``, not a dangling link, and not an existing file this command
    did not write (unless ``overwrite``)."""
    folder = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a directory; give a file path for the {what}")
    if os.path.islink(out) and not os.path.exists(out):
        raise ValueError(f"--out {out!r} is a symbolic link to {os.readlink(out)!r}, which does not exist; remove "
                         "the link or give another path")
    if not os.path.isdir(folder):
        raise ValueError(f"--out {out!r}: folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out!r}: folder {folder!r} is not writable")
    if os.path.exists(out) and not os.access(out, os.W_OK):
        raise ValueError(f"--out {out!r} exists and is not writable")
    for path in inputs:
        if _same_file(out, path):
            raise ValueError(f"--out {out!r} is the input file {path!r}: refusing to overwrite it with the {what}")
    if os.path.exists(out) and not overwrite and not written_here(out):
        raise ValueError(f"--out {out!r} exists and is not a {what} this command wrote: refusing to overwrite it; "
                         "pass --overwrite to replace it, or give another path")


def image_output(image: str, out: str | None, overwrite: bool = False) -> str:
    """The swatch path (--out, or ``<image's name>_palette.png`` in the current folder), checked; its extension
    must be one PIL writes."""
    from PIL import Image as PILImage
    path = out or os.path.splitext(os.path.basename(image))[0] + "_palette.png"
    fmt = PILImage.registered_extensions().get(os.path.splitext(path)[1].lower())
    if fmt is None or fmt not in PILImage.SAVE:
        raise ValueError(f"--out {path!r}: unknown image extension (use .png)")
    check_output(path, (image,), "swatch", overwrite)
    return path


def data_output(data: str, out: str | None, overwrite: bool = False) -> str | None:
    """The .npz path np.savez will write (it appends .npz when missing), checked; None without --out."""
    if not out:
        return None
    path = out if out.endswith(".npz") else out + ".npz"
    check_output(path, (data,), "clusters", overwrite)
    return path


def save_swatch(pixels: np.ndarray, path: str) -> None:
    """Write the swatch; a PNG carries ``SWATCH_TAG`` so that a later run may replace it."""
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", SWATCH_TAG)
    Image.fromarray(pixels).save(path, **({"pnginfo": info} if path.lower().endswith(".png") else {}))


def main(argv):
    del argv
    common.setup()

    if bool(_IMAGE.value) == bool(_DATA.value):
        raise ValueError("give exactly one of --image or --data")
    mesh = data_mesh() if jax.device_count() > 1 else None
    k_max = _K_MAX.value if _K_MAX.present or not _K.present else _K.value
    args = dict(n_init=_N_INIT.value, max_iter=_MAX_ITER.value, seed=_SEED.value, mesh=mesh)
    writer = jax.process_index() == 0

    if _IMAGE.value:
        if not os.path.isfile(_IMAGE.value):
            raise ValueError(f"cannot read image {_IMAGE.value!r}: no such file")
        out = image_output(_IMAGE.value, _OUT.value, _OVERWRITE.value)
        thumb = pal.parse_size(_THUMB.value) if _THUMB.value else None
        pixels = pal.load_pixels(_IMAGE.value, thumb)
        p = pal.palette(pixels, _K.value, auto_k=_AUTO_K.value, k_max=k_max, criterion=_CRITERION.value, **args)
        if writer:
            skipped = int((pixels[..., 3] == 0).sum()) if pixels.shape[-1] == 4 else 0
            print(f"{pixels.shape[1]}x{pixels.shape[0]} pixels"
                  f"{f' ({skipped} transparent, skipped)' if skipped else ''}, k={len(p.colors)}"
                  f"{' (auto)' if _AUTO_K.value else ''}, {int(p.fit.n_iter)} iterations", file=sys.stderr)
            print("\n".join(p.lines()))
            save_swatch(pal.swatch(p), out)
            print(f"swatch: {out}", file=sys.stderr)
        return 0

    out = data_output(_DATA.value, _OUT.value, _OVERWRITE.value)
    x = load_matrix(_DATA.value, _HEADER.value)
    if _AUTO_K.value:
        found = kmeans_auto_k(x, k_max, criterion=_CRITERION.value, **args)
        fit = found.result
        print(f"auto k={found.k} ({_CRITERION.value}); W(k) = {np.round(found.inertia, 4).tolist()}",
              file=sys.stderr)
    else:
        fit = kmeans(x, _K.value, **args)
    sizes = np.asarray(fit.sizes, np.float64)
    print(f"{x.shape[0]} points x {x.shape[1]} features, k={len(sizes)}, inertia={float(fit.inertia):.6g}, "
          f"{int(fit.n_iter)} iterations", file=sys.stderr)
    centers = np.asarray(fit.centers)
    if writer:
        for j in np.argsort(-sizes, kind="stable"):
            print(f"cluster {j:3d}  {sizes[j] / sizes.sum():.4f}  " + " ".join(f"{v:.6g}" for v in centers[j]))
    labels = fit.labels
    if jax.process_count() > 1:   # labels stay sharded over the hosts' devices: gather them (all processes)
        labels = multihost_utils.process_allgather(labels, tiled=True)
    if out and writer:
        np.savez(out, centers=centers, labels=np.asarray(labels)[:x.shape[0]])
        print(f"saved: {out}", file=sys.stderr)
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
