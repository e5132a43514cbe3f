"""K-means from the command line: an image's colour palette, or the clusters of a .npy/.csv matrix.

    python launch/kmeans.py --image=photo.jpg --k=5 [--auto_k] [--thumbnail=200x400] [--out=swatch.png]
        prints ``#rrggbb  0.4213`` per colour, largest cluster first, and writes a swatch PNG beside the
        image (``photo_palette.png``) or to --out.
    python launch/kmeans.py --data=X.npy|X.csv --k=8 [--auto_k] [--out=clusters.npz]
        prints one line per cluster (share, centre), largest first; --out saves centers and labels.

With several devices (``--num_cpu_devices=N`` fakes N on a CPU) the points are split over a ``data``
mesh. Fails with exit status 1 and the reason on the last line (k > distinct points, NaN/inf,
an unreadable file).
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
flags.adopt_module_key_flags(common)


def load_matrix(path: str):
    """f32[n, d] from a .npy or a comma-separated .csv (one header line allowed)."""
    if not os.path.isfile(path):
        raise ValueError(f"data file {path!r} does not exist")
    try:
        if path.endswith(".npy"):
            x = np.load(path, allow_pickle=False)
        elif path.endswith(".csv"):
            try:
                x = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
            except ValueError:
                x = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64, skiprows=1)
        else:
            raise ValueError(f"data file {path!r} must end in .npy or .csv")
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read data file {path!r}: {e}") from None
    if x.ndim == 1:
        x = x[:, None]
    return x


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
        thumb = pal.parse_size(_THUMB.value) if _THUMB.value else None
        pixels = pal.load_pixels(_IMAGE.value, thumb)
        p = pal.palette(pixels, _K.value, auto_k=_AUTO_K.value, k_max=k_max, criterion=_CRITERION.value, **args)
        out = _OUT.value or os.path.splitext(_IMAGE.value)[0] + "_palette.png"
        if writer:
            print(f"{pixels.shape[1]}x{pixels.shape[0]} pixels, k={len(p.colors)}"
                  f"{' (auto)' if _AUTO_K.value else ''}, {int(p.fit.n_iter)} iterations", file=sys.stderr)
            print("\n".join(p.lines()))
            Image.fromarray(pal.swatch(p)).save(out)
            print(f"swatch: {out}", file=sys.stderr)
        return 0

    x = load_matrix(_DATA.value)
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
    if _OUT.value and writer:
        np.savez(_OUT.value, centers=centers, labels=np.asarray(labels)[:x.shape[0]])
        print(f"saved: {_OUT.value}", file=sys.stderr)
    return 0


def run():
    common.run(main)


if __name__ == "__main__":
    run()
