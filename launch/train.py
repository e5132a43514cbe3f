"""Train one config: python launch/train.py --config=configs/x.py[:arg] --workdir=DIR (see jaxml/cli/train.py)."""
from jaxml.cli.train import run

if __name__ == "__main__":
    run()
