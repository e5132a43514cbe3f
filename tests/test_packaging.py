"""The installed package: configs named as in the README (``configs/x.py``) or by short name (``x``) resolve to
the copy shipped with jaxml when they are not files here, and a wheel built from this tree, installed into a
fresh virtual environment, runs the tutorial and the palette from an empty folder outside the clone."""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

from jaxml.cli import config_file

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_readme_path_and_short_name_resolve_to_the_shipped_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                                   # no configs/ here
    shipped = ROOT / "configs" / "zhou_gender.py"
    for name in ("configs/zhou_gender.py", "zhou_gender", "zhou_gender.py"):
        assert pathlib.Path(config_file.resolve_path(name)).samefile(shipped), name
    assert config_file.load_config("zhou_gender").to_dict() == config_file.load_config(str(shipped)).to_dict()
    assert config_file.load_config("clock:quick").train.num_steps == 60
    assert {"zhou_gender", "clock", "mnist_mlp", "imdb_nb"} <= set(config_file.shipped_configs())
    # A file of that name here is the user's own and wins; other folders are never looked up.
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "zhou_gender.py").write_text(shipped.read_text().replace("c.seed = 0", "c.seed = 7"))
    assert config_file.resolve_path("configs/zhou_gender.py") == "configs/zhou_gender.py"
    assert config_file.resolve_path("elsewhere/zhou_gender.py") == "elsewhere/zhou_gender.py"
    with pytest.raises(FileNotFoundError, match=r"'configs/nope.py' does not exist .*zhou_gender"):
        config_file.load_config("configs/nope.py")


def test_command_line_config_flags_are_resolved_before_the_separator_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clock = str(ROOT / "configs" / "clock.py")
    argv = ["--config=clock:quick,tiny", "--config.seed=3", "--workdir=w", "--", "--config=clock"]
    got = config_file.resolve_config_flags(argv)
    assert os.path.samefile(got[0].removeprefix("--config=").partition(":")[0], clock)
    assert got[0].endswith(":quick,tiny") and got[1:] == argv[1:]
    got = config_file.resolve_config_flags(["--config", "configs/clock.py"])
    assert got[0] == "--config" and os.path.samefile(got[1], clock)
    assert config_file.resolve_config_flags(["--config=missing.py"]) == ["--config=missing.py"]


def test_readme_links_and_notebook_install_cells_use_the_repository_url():
    """pyproject.toml's ``[project.urls] Repository`` is the one place for the address: every GitHub link of
    the README and the notebooks (Colab links, ``pip install ... @ git+URL``) names that repository, and the
    README links every notebook."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    urls = pyproject[pyproject.index("[project.urls]\n"):].split("\n\n")[0]
    url = re.search(r'^Repository = "(.+)"$', urls, re.M)[1]
    repo = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+)", url)[1]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    colab = re.findall(r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/notebooks/"
                       r"([\w.-]+\.ipynb)", readme)
    assert sorted(name for _, name in colab) == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for path in [ROOT / "README.md", *sorted((ROOT / "notebooks").glob("*.ipynb"))]:
        named = re.findall(r"(?:github\.com|google\.com/github)/([\w.-]+/jaxml)\b", path.read_text(encoding="utf-8"))
        assert named and set(named) == {repo}, (path.name, set(named))
        if path.suffix == ".ipynb":
            assert f'%pip install -q \\"jaxml[notebook] @ git+{url}\\"' in path.read_text(encoding="utf-8"), path


def _copy_sources(dest: pathlib.Path) -> None:
    """What the wheel is built from: no build/ or egg-info of an earlier in-tree build can leak into it."""
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    for folder in ("jaxml", "configs"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_tutorial_and_palette_outside_the_clone(tmp_path):
    """``pip wheel`` of this tree, installed (no index, no dependencies: this environment's packages are visible
    through a .pth file) into a new venv; from an empty folder, the README's tutorial command and its short-name
    form train and print the tutorial's predictions, and the palette of scikit-learn's sample photo lands in
    that folder."""
    src, wheels, venv, cwd = (tmp_path / d for d in ("src", "wheels", "venv", "empty"))
    for d in (src, cwd):
        d.mkdir()
    _copy_sources(src)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]

    def check(cmd, **kw):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kw)
        assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
        return r

    check([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)])
    (wheel,) = wheels.glob("jaxml-*.whl")
    check([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python, scripts = venv / "bin" / "python", venv / "bin"
    # The dependencies: this environment's packages, after the venv's own (a venv cannot inherit another venv's).
    site = check([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    outer = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    pathlib.Path(site, "test_env_packages.pth").write_text("\n".join(sorted(outer)) + "\n")
    check([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    where = check([str(python), "-c", "import jaxml; print(jaxml.__file__)"], cwd=cwd).stdout.strip()
    assert where.startswith(str(venv)), where                     # the wheel's copy, not this tree's

    for config in ("configs/zhou_gender.py", "zhou_gender"):
        workdir = f"runs/{config.replace('/', '_')}"
        r = check([str(scripts / "jaxml-train"), f"--config={config}", f"--workdir={workdir}",
                   "--config.train.progress_bar=False"], cwd=cwd)
        lines = dict(line.split(": ", 1) for line in r.stdout.splitlines() if line.startswith(("Emily", "Frank")))
        assert float(lines["Emily"]) > 0.9 and float(lines["Frank"]) < 0.1, r.stdout
        assert (cwd / workdir / "metrics.jsonl").is_file()

    sklearn = pytest.importorskip("sklearn")
    photo = pathlib.Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg"
    r = check([str(scripts / "jaxml-kmeans"), f"--image={photo}", "--k=3", "--n_init=1"], cwd=cwd)
    assert len(r.stdout.splitlines()) == 3 and (cwd / "china_palette.png").is_file()
    assert not (photo.parent / "china_palette.png").exists()
