"""LR range test: python launch/lr_find.py --config=configs/x.py[:arg] --workdir=DIR (see jaxml/cli/lr_find.py)."""
from jaxml.cli.lr_find import run

if __name__ == "__main__":
    run()
