"""The one thing pyproject.toml cannot say: the top-level ``configs/`` (the folder users edit) ships in the wheel
as ``jaxml/_configs/``, beside the auto-discovered ``jaxml*`` packages, so ``--config=configs/x.py`` and
``--config=x`` work from an installed copy (``jaxml/cli/config_file.py`` resolves them). Metadata: pyproject.toml."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["jaxml", "jaxml.*"]) + ["jaxml._configs"],
      package_dir={"jaxml._configs": "configs"})
