"""IMDB naive Bayes: python launch/naive_bayes.py --config=configs/imdb_nb.py[:arg] --workdir=DIR [--text=...]."""
from jaxml.tasks.imdb_nb.main import run

if __name__ == "__main__":
    run()
