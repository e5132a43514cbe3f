"""IMDB sentiment (aclImdb: 25k train / 25k test reviews) with naive Bayes on bags of n-grams. ``best``
(default): binarised multinomial NB over 1-4-grams seen >= 3 times, stop words kept, alpha 0.1, fitted on
the train reviews and scored on the test reviews; ``:seed_protocol``: the from-scratch book's protocol
(80/20 stratified split of the train reviews, unigrams, stop words dropped, counts, alpha 1); ``:quick``:
2,000 / 2,000 reviews, unigrams (smoke run).

Command:  python launch/naive_bayes.py --config=configs/imdb_nb.py[:seed_protocol|:quick] --workdir=runs/nb
          (data from $JAXML_DATA_DIR/imdb; add --text="A gem." to classify one text with the cached model)
Expected: accuracy: 0.8839 (best), 0.8604 (seed_protocol; the book: 0.8556), 0.8190 (quick);
          every variant and how ``best`` was chosen: jaxml/tasks/imdb_nb/README.md.
Runtime:  ~10 s (best), a few seconds (seed_protocol, quick) on 2 CPU cores.
"""
import ml_collections
from ml_collections import config_dict


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.data = ml_collections.ConfigDict()
    c.data.source = "csv"                    # csv | tfds
    c.data.data_dir = config_dict.placeholder(str)   # None: $JAXML_DATA_DIR (csv) / TFDS default
    c.data.protocol = "official"             # official: train -> test | holdout: 80/20 of train
    c.data.holdout_fraction = 0.2
    c.data.seed = 0
    c.data.max_train_docs = 0                # 0 = all; else a seeded subsample (quick runs)
    c.data.max_eval_docs = 0

    c.text = ml_collections.ConfigDict()
    c.text.stop_words = True
    c.text.strip_html = True
    c.text.ngram_range = (1, 1)
    c.text.min_count = 1
    c.text.max_size = 0                      # 0 = unlimited
    c.text.binary = False                    # presence instead of counts (Bernoulli always is)

    c.model = ml_collections.ConfigDict()
    c.model.kind = "multinomial"             # multinomial | bernoulli | complement
    c.model.alpha = 1.0                      # Lidstone/Laplace smoothing, > 0
    c.model.fit_prior = True
    c.model.norm = False                     # complement only: Rennie's weight normalisation
    c.progress = True

    arg = arg or "best"
    if arg == "seed_protocol":
        c.data.protocol = "holdout"
    elif arg == "best":
        c.text.stop_words = False
        c.text.ngram_range = (1, 4)
        c.text.min_count = 3
        c.text.binary = True
        c.model.alpha = 0.1
    elif arg == "quick":
        c.data.max_train_docs = 2000
        c.data.max_eval_docs = 2000
        c.progress = False
    else:
        raise ValueError(f"unknown config arg {arg!r}; expected best | seed_protocol | quick")
    return c
