"""Hyperparameter search: python launch/sweep.py --config=... --workdir=DIR --space=... (see jaxml/cli/sweep.py)."""
from jaxml.cli.sweep import run

if __name__ == "__main__":
    run()
