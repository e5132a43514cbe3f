"""Prepare downloads: python launch/data.py imdb|mnist|fashion_mnist|check --from=... (see jaxml/cli/data.py)."""
from jaxml.cli.data import run

if __name__ == "__main__":
    run()
