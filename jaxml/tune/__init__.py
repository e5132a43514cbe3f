"""Tuning tools: hyperparameter search (``search``: grid / random coarse-to-fine over a space string),
vmapped populations (``population``: N runs differing in lr, penalties, seed or dropout rates trained as one
program through the one loop) and the learning-rate range test (``lr_range``)."""
