"""notebooks/*.ipynb: stored without outputs, only public jaxml names, the first-cell convention, and each one
executed top to bottom in quick mode (JAXML_QUICK=1) with a real IPython kernel (nbclient).

The conventions are written down for authors in the first cell of every notebook (install line, QUICK switch);
the execution test measures each notebook's wall time (printed, budget ~90 s on 2 CPU cores) but never asserts
it: a slow machine must not fail CI. Run: ``python -m pytest tests/test_notebooks.py -q -s -k <name>``.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import time

import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# pyproject.toml's [project.urls] Repository: the one place for the repository's address.
REPOSITORY = re.search(r'^Repository = "(.+)"$', (NOTEBOOK_DIR.parent / "pyproject.toml").read_text(), re.M)[1]
INSTALL_LINE = f'%pip install -q "jaxml[notebook] @ git+{REPOSITORY}"'
CELL_TIMEOUT_S = 600          # per cell: a wide margin over the ~90 s a whole notebook takes on 2 cores
KERNEL_NAME = "jaxml-test"

# `from jaxml.x import _y`, `from jaxml.x import a, _y`, `import jaxml._x`, `jaxml.x._y` (attribute access).
_PRIVATE_IMPORT = re.compile(r"^\s*from\s+jaxml[\w.]*\s+import\s+\(?([^#\n]*)", re.MULTILINE)
_PRIVATE_MODULE = re.compile(r"\bjaxml(\.\w+)*\._\w*")
_DUNDER = re.compile(r"(^|\.)__\w+__$")


def _ids(paths):
    return [p.stem for p in paths]


def _load(path: pathlib.Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def private_names(source: str) -> list[str]:
    """The private jaxml names (a segment starting with ``_``) a cell imports or reaches by attribute."""
    found = [m.group(0) for m in _PRIVATE_MODULE.finditer(source)]
    for m in _PRIVATE_IMPORT.finditer(source):
        found += [name for name in re.split(r"[,\s()]+", m.group(1)) if name.startswith("_")]
    return [name for name in found if not _DUNDER.search(name)]     # jaxml.__version__ is public


def test_private_names_detector():
    assert private_names("from jaxml.train import _step\n") == ["_step"]
    assert private_names("from jaxml.train import fit, _x as y\n") == ["_x"]
    assert private_names("import jaxml._internal\n") == ["jaxml._internal"]
    assert private_names("y = jaxml.train.loop._run(c)\n") == ["jaxml.train.loop._run"]
    assert private_names("from jaxml.kmeans import kmeans\nx = jaxml.__version__\nprint(_z)\n") == []
    assert private_names("from jaxml import __version__\n") == []


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_without_outputs(path):
    nb = _load(path)
    stale = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not stale, (f"{path.name}: cells {stale} carry outputs or execution counts; clear them (Jupyter: Edit > "
                       f"Clear Outputs of All Cells; or pip install nbconvert && jupyter nbconvert --clear-output "
                       f"--inplace {path})")
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: stored widget state (metadata.widgets)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_first_cell_and_public_names(path):
    import nbformat

    nbformat.validate(nbformat.read(str(path), as_version=4))
    nb = _load(path)
    code = _code_cells(nb)
    assert code, f"{path.name}: no code cells"
    first = _source(code[0])
    for needle in ('find_spec("jaxml")', INSTALL_LINE, "JAXML_QUICK", "QUICK ="):
        assert needle in first, f"{path.name}: the first code cell lacks {needle!r} (see the conventions)"
    bad = {i: private_names(_source(c)) for i, c in enumerate(code)}
    bad = {i: names for i, names in bad.items() if names}
    assert not bad, f"{path.name}: private jaxml names in code cells {bad}"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernel spec running this interpreter (so a fresh venv needs no registered kernel) and quick mode."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "jaxml test kernel", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    saved = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JAXML_QUICK", "MPLBACKEND")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), saved["JUPYTER_PATH"]]))
    os.environ["JAXML_QUICK"] = "1"
    os.environ.pop("MPLBACKEND", None)          # the notebooks' %matplotlib inline picks the backend
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, kernel_env, record_property):
    import nbclient
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    if not os.environ.get("JAXML_DATA_DIR") and any("JAXML_DATA_DIR" in c.source for c in nb.cells):
        pytest.skip(f"JAXML_DATA_DIR unset: {path.name} reads data, run SKIPPED (export JAXML_DATA_DIR=...)")
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name=KERNEL_NAME, allow_errors=False,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        index = next((i for i, c in enumerate(nb.cells)
                      if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.outputs)), None)
        where = f"cell {index}:\n{nb.cells[index].source}\n" if index is not None else ""
        pytest.fail(f"{path.name} failed in {where}{err}", pytrace=False)
    except nbclient.exceptions.CellTimeoutError as err:
        pytest.fail(f"{path.name}: a cell ran past {CELL_TIMEOUT_S} s: {err}", pytrace=False)
    wall = time.perf_counter() - start
    record_property("wall_s", round(wall, 1))
    print(f"\n{path.name}: {wall:.1f} s in quick mode (budget ~90 s on 2 CPU cores; not asserted)")
