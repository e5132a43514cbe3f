"""Time to first result: whole processes, first run in an empty compilation cache, then a repeat run.

    flock /tmp/jaxml-bench.lock python bench/cold_start.py [--repeats=3] [--jobs=palette,nb,tutorial]

Jobs (each a fresh ``python`` process, wall time from start to exit, outputs to a fresh temp folder):
- ``palette``: ``launch/kmeans.py --image=china.png --k=8`` (scikit-learn's sample photo, saved as a PNG first;
  thumbnailed to 200 x 133, 4 restarts) vs a scikit-learn script doing the same (PIL thumbnail, ``KMeans(8,
  n_init=4)``, the palette lines and a swatch PNG);
- ``nb``: ``launch/naive_bayes.py --config=configs/imdb_nb.py:quick`` (2,000 / 2,000 IMDB reviews, multinomial NB,
  report + confusion-matrix PNG) vs a scikit-learn script (pyarrow CSV read, ``CountVectorizer(stop_words=
  "english")`` + ``MultinomialNB``, the same report and PNG); needs ``$JAXML_DATA_DIR/imdb``;
- ``tutorial``: ``launch/train.py --config=configs/zhou_gender.py`` (the quick start; no peer).
jaxml runs as ``first`` (``JAXML_COMPILATION_CACHE`` = a new empty folder) and ``repeat`` (the same folder again).
Runs are interleaved (first, repeat, peer, next job, ...) over ``--repeats`` rounds; medians are reported, and
the ratios peer / jaxml (> 1 = jaxml faster) are the medians of the per-round ratios (robust to a shared machine's
load changing between rounds). Goals (issue 18): repeat <= peer (ratio >= 1), first <= 1.5 x
peer (ratio >= 0.667). Import times (``python -c "import M"`` minus ``python -c pass``, medians) are reported
separately: ``jaxml`` itself, each launcher module and the peers' imports.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app, flags

import timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPEATS = flags.DEFINE_integer("repeats", 3, "Interleaved rounds (medians over them).")
_JOBS = flags.DEFINE_list("jobs", ["palette", "nb", "tutorial"], "Jobs to time: palette, nb, tutorial.")
_IMPORT_REPEATS = flags.DEFINE_integer("import_repeats", 3, "Runs per import-time figure.")

SK_PALETTE = r'''
import sys
import numpy as np
from PIL import Image
from sklearn.cluster import KMeans
img = Image.open(sys.argv[1]).convert("RGB")
img.thumbnail((200, 400), resample=Image.Resampling.NEAREST)
x = np.asarray(img, np.float32).reshape(-1, 3)
km = KMeans(n_clusters=8, n_init=4, random_state=0).fit(x)
sizes = np.bincount(km.labels_, minlength=8)
order = np.argsort(-sizes)
colors = np.clip(np.rint(km.cluster_centers_[order]), 0, 255).astype(np.uint8)
for c, s in zip(colors, sizes[order] / sizes.sum()):
    print("#%02x%02x%02x  %.4f" % (*c, s))
Image.fromarray(np.repeat(np.repeat(colors[None], 100, 0), 100, 1)).save(sys.argv[2])
'''

SK_NB = r'''
import os, sys
import numpy as np
import pyarrow.csv as pcsv
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix
from sklearn.naive_bayes import MultinomialNB

def load(split, n, seed):
    t = pcsv.read_csv(os.path.join(os.environ["JAXML_DATA_DIR"], "imdb", f"aclImdb_{split}.csv.gz"))
    pick = np.sort(np.random.default_rng(seed).permutation(t.num_rows)[:n])
    return [t.column("review")[int(i)].as_py() for i in pick], np.asarray(t.column("sentiment"))[pick]

(xtr, ytr), (xte, yte) = load("train", 2000, 0), load("test", 2000, 1)
vec = CountVectorizer(stop_words="english")
model = MultinomialNB(alpha=1.0).fit(vec.fit_transform(xtr), ytr)
pred = model.predict(vec.transform(xte))
print(classification_report(yte, pred, target_names=["neg", "pos"], digits=4))
print(f"accuracy: {accuracy_score(yte, pred):.4f}")
from matplotlib.figure import Figure
fig = Figure(figsize=(4, 4))
fig.add_subplot().imshow(confusion_matrix(yte, pred))
fig.savefig(os.path.join(sys.argv[1], "confusion_matrix.png"))
'''


def china_png(folder: str) -> str:
    """scikit-learn's bundled sample photo (no download) as a PNG the launcher reads."""
    from PIL import Image
    from sklearn.datasets import load_sample_image
    path = os.path.join(folder, "china.png")
    Image.fromarray(load_sample_image("china.jpg")).save(path)
    return path


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return elapsed


def job_commands(name: str, scratch: str, image: str):
    """(jaxml command given a fresh output folder, peer command or None)."""
    py = sys.executable
    if name == "palette":
        return (lambda out: [py, "launch/kmeans.py", f"--image={image}", "--k=8", f"--out={out}/swatch.png"],
                lambda out: [py, os.path.join(scratch, "sk_palette.py"), image, f"{out}/swatch.png"])
    if name == "nb":
        return (lambda out: [py, "launch/naive_bayes.py", "--config=configs/imdb_nb.py:quick", f"--workdir={out}"],
                lambda out: [py, os.path.join(scratch, "sk_nb.py"), out])
    if name == "tutorial":
        return lambda out: [py, "launch/train.py", "--config=configs/zhou_gender.py", f"--workdir={out}/run"], None
    raise ValueError(f"unknown job {name!r}; expected palette, nb or tutorial")


def import_seconds(module: str, env: dict, repeats: int) -> float:
    """Median wall time of ``python -c "import module"`` minus that of ``python -c pass``."""
    def wall(code):
        return statistics.median(timed([sys.executable, "-c", code], env) for _ in range(repeats))
    return wall(f"import {module}") - wall("pass")


def main(argv):
    del argv
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    if "nb" in _JOBS.value and not os.path.isdir(os.path.join(os.environ.get("JAXML_DATA_DIR", ""), "imdb")):
        raise ValueError("the nb job needs $JAXML_DATA_DIR/imdb (or pass --jobs=palette,tutorial)")
    scratch = tempfile.mkdtemp(prefix="jaxml-cold-")
    try:
        with open(os.path.join(scratch, "sk_palette.py"), "w") as f:
            f.write(SK_PALETTE)
        with open(os.path.join(scratch, "sk_nb.py"), "w") as f:
            f.write(SK_NB)
        image = china_png(scratch)
        times: dict[str, list[float]] = {}
        for r in range(_REPEATS.value):
            for name in _JOBS.value:
                ours, peer = job_commands(name, scratch, image)
                cache = os.path.join(scratch, f"cache-{name}-{r}")
                for kind in ("first", "repeat"):
                    out = tempfile.mkdtemp(dir=scratch)
                    t = timed(ours(out), dict(env, JAXML_COMPILATION_CACHE=cache))
                    times.setdefault(f"{name}/{kind}", []).append(t)
                    print(f"round {r} {name} {kind}: {t:.2f} s", flush=True)
                if peer is not None:
                    t = timed(peer(tempfile.mkdtemp(dir=scratch)), env)
                    times.setdefault(f"{name}/sklearn", []).append(t)
                    print(f"round {r} {name} sklearn: {t:.2f} s", flush=True)
        medians = {k: statistics.median(v) for k, v in times.items()}
        imports = {m: import_seconds(m, env, _IMPORT_REPEATS.value) for m in (
            "jaxml", "jax", "jaxml.cli.kmeans", "jaxml.tasks.imdb_nb.main", "jaxml.cli.train", "sklearn.cluster",
            "sklearn.naive_bayes")}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    table, ratios = [], {}
    for key, value in medians.items():
        spread = f"runs {min(times[key]):.2f}-{max(times[key]):.2f} s"
        table.append((key, value, spread))
    for name in _JOBS.value:
        if f"{name}/sklearn" in medians:
            for kind, goal in (("repeat", 1.0), ("first", 1 / 1.5)):
                # Per round (its runs are seconds apart, so a shared machine's load hits both alike), then the median.
                per_round = [p / o for p, o in zip(times[f"{name}/sklearn"], times[f"{name}/{kind}"])]
                ratio = statistics.median(per_round)
                ratios[f"{name} {kind}: sklearn/jaxml"] = ratio
                table.append((f"{name} {kind} vs sklearn", ratio, f"median of per-round ratios "
                              f"{min(per_round):.2f}-{max(per_round):.2f}; goal >= {goal:.2f}: "
                              f"{'met' if ratio >= goal else 'NOT met'}"))
    for m, s in imports.items():
        table.append((f"import {m}", s, "s (python -c 'import M' minus python -c pass)"))
        medians[f"import {m}"] = s
    timing.emit("cold_start", "s", False, medians, ratios, table)


if __name__ == "__main__":
    app.run(main)
