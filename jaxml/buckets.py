"""Shape buckets: the padded size a program is compiled for, so that nearby data sizes share one program.

K-means pads its rows and naive Bayes its token and document streams (weight 0 / masked) up to
max(n, BUCKET_FLOOR) rounded up to a multiple of 2^floor(log2 n) / BUCKETS_PER_OCTAVE: one more row or document
reuses the compiled program, and above the floor the padding is at most 1/16 of the work.
"""
from __future__ import annotations

BUCKET_FLOOR = 1024
BUCKETS_PER_OCTAVE = 16


def bucket(n: int, multiple: int = 1, floor: int = BUCKET_FLOOR) -> int:
    """The padded size a program for n items is compiled for: max(n, floor) rounded up to a multiple of
    2^floor(log2 max(n, floor)) / BUCKETS_PER_OCTAVE, then to a multiple of ``multiple`` (a device count).
    1000 -> 1024, 1025 -> 1088, 26_600 -> 26_624, 1_000_000 -> 1_015_808."""
    m = max(int(n), int(floor), 1)
    step = max(1, (1 << (m.bit_length() - 1)) // BUCKETS_PER_OCTAVE)
    size = -(-m // step) * step
    return -(-size // multiple) * multiple
