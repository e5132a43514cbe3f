"""IMDB movie-review sentiment (aclImdb v1.0, Maas et al. 2011): 25,000 train / 25,000 test reviews.

Entry point: ``load_imdb(split, source=...)`` -> :class:`ImdbSplit` with ``texts`` (a pyarrow
string array, fed as is to ``jaxml.naive_bayes.text.tokenize``) and ``labels: i32[N]`` (0 = neg, 1 = pos).

Sources:
- ``"csv"``: ``<data_dir>/imdb/aclImdb_{train,test}.csv.gz`` (``data_dir`` defaults to
  ``$JAXML_DATA_DIR``), columns ``path,id,rating,label,sentiment,review`` (see SOURCE.md beside
  them). Read by Arrow's CSV reader; every row is checked (6 fields, integer id/rating, sentiment
  0/1 agreeing with label neg/pos); a bad row, or a byte that is not UTF-8, fails with the file and its
  line number. Reviews of any length load: a row longer than Arrow's block is read again with a block
  that holds it (Python's csv field limit is raised for the check, then restored).
- ``"tfds"``: ``tfds.data_source("imdb_reviews", split=..., download=False)`` from an array_record
  TFDS data dir (``data_dir``, default TFDS's own). Nothing is ever downloaded.

``holdout_split`` carves the book's 80/20 train/validation split (stratified, seeded).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import gzip
import os
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from jaxml.data.images import stratified_validation_split

SPLITS = ("train", "test")
SOURCES = ("csv", "tfds")
CLASS_NAMES = ("neg", "pos")
COLUMNS = ("path", "id", "rating", "label", "sentiment", "review")
_TYPES = {"path": pa.string(), "id": pa.int64(), "rating": pa.int64(), "label": pa.string(),
          "sentiment": pa.int64(), "review": pa.large_string()}


@dataclasses.dataclass(frozen=True)
class ImdbSplit:
    """``texts``: str[N] (pyarrow); ``labels``: i32[N], 0 = neg, 1 = pos; ``ids``: i64[N] or None."""
    texts: pa.Array
    labels: np.ndarray
    ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index) -> "ImdbSplit":
        index = np.asarray(index)
        return ImdbSplit(self.texts.take(pa.array(index)), self.labels[index],
                         None if self.ids is None else self.ids[index])


def csv_path(split: str, data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """``<data_dir>/imdb/aclImdb_<split>.csv.gz``; a clear error when the file is not there."""
    if split not in SPLITS:
        raise ValueError(f"IMDB split {split!r} unknown; expected one of {SPLITS}")
    root = data_dir or os.environ.get("JAXML_DATA_DIR")
    if not root:
        raise FileNotFoundError(
            "IMDB data dir unknown: set $JAXML_DATA_DIR (or config.data.data_dir) to the folder that "
            "holds imdb/aclImdb_train.csv.gz and imdb/aclImdb_test.csv.gz")
    path = pathlib.Path(root) / "imdb" / f"aclImdb_{split}.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: put aclImdb_{split}.csv.gz (columns "
                                f"{','.join(COLUMNS)}) in {path.parent}")
    return path


def _row_error(path, line: int, message: str) -> ValueError:
    return ValueError(f"{path}: line {line} (data row {line - 1}): {message}")


def _check_row(path, line: int, row: list[str]) -> None:
    if len(row) != len(COLUMNS):
        raise _row_error(path, line, f"expected {len(COLUMNS)} fields ({','.join(COLUMNS)}), "
                                     f"got {len(row)}: {str(row)[:120]}")
    for name in ("id", "rating", "sentiment"):
        value = row[COLUMNS.index(name)]
        if not value.strip().lstrip("-").isdigit():
            raise _row_error(path, line, f"column {name!r} must be an integer, got {value[:40]!r}")
    _check_label(path, line, row[3], int(row[4]))


def _check_label(path, line: int, label: str, sentiment: int) -> None:
    if sentiment not in (0, 1):
        raise _row_error(path, line, f"column 'sentiment' must be 0 or 1, got {sentiment}")
    if label != CLASS_NAMES[sentiment]:
        raise _row_error(path, line, f"label {label!r} disagrees with sentiment {sentiment} "
                                     f"(expected {CLASS_NAMES[sentiment]!r})")


ARROW_BLOCK = 1 << 20          # pyarrow.csv's default block size (bytes)
MAX_FIELD = 2 ** 31 - 1        # csv field limit while checking (a C long on every platform)


@contextlib.contextmanager
def _csv_field_limit(limit: int = MAX_FIELD):
    """Raise Python's csv field size limit (default 128 KiB) for a block, then restore it (it is global)."""
    old = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _utf8_lines(path, raw):
    """The decoded lines of a binary stream; a byte that is not UTF-8 fails with the file and line.
    Splitting on b"\n" first is safe: no multi-byte UTF-8 sequence contains that byte."""
    for number, line in enumerate(raw, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: line {number}: not valid UTF-8 (byte 0x{line[err.start]:02x} at byte "
                             f"{err.start + 1} of the line: {line[max(0, err.start - 20):err.start + 20]!r})"
                             ) from None


def _locate_bad_row(path) -> int:
    """Slow path after Arrow refused the file: find the first bad row with Python's csv module.

    Returns the longest row in bytes when every row is fine (then only Arrow's block size was too small)."""
    consumed = [0]

    def measured(lines):
        for line in lines:
            consumed[0] += len(line)
            yield line

    longest = last = 0
    with gzip.open(path, "rb") as raw, _csv_field_limit():
        reader = csv.reader(_utf8_lines(path, measured(raw)))
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header {','.join(COLUMNS)}")
        if tuple(header) != COLUMNS:
            raise _row_error(path, 1, f"header {header} != expected {list(COLUMNS)}")
        for row in reader:
            _check_row(path, reader.line_num, row)
            longest, last = max(longest, consumed[0] - last), consumed[0]
    return longest


def _read_table(path, block_size: int = ARROW_BLOCK):
    return pcsv.read_csv(path, read_options=pcsv.ReadOptions(block_size=block_size),
                         convert_options=pcsv.ConvertOptions(column_types=_TYPES, strings_can_be_null=False,
                                                             include_columns=list(COLUMNS)))


def load_imdb_csv(split: str, data_dir: str | os.PathLike | None = None) -> ImdbSplit:
    """One split from the CSV file, rows in file order (pos then neg: shuffle before training)."""
    path = csv_path(split, data_dir)
    try:
        table = _read_table(path)
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, UnicodeDecodeError) as err:
        longest = _locate_bad_row(path)  # raises, naming the line, unless every row is fine
        block = 2 * longest + ARROW_BLOCK  # Arrow fails on a row longer than its block: give it a block that fits
        try:
            if longest < ARROW_BLOCK or block > MAX_FIELD:
                raise err
            table = _read_table(path, block)
        except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError, UnicodeDecodeError) as again:
            raise ValueError(f"{path}: cannot be read as IMDB CSV: {again}") from err
    if tuple(table.column_names) != COLUMNS:
        raise _row_error(path, 1, f"header {table.column_names} != expected {list(COLUMNS)}")
    sentiment = np.asarray(table.column("sentiment"))
    expected = pc.if_else(pc.equal(table.column("sentiment"), 1), "pos", "neg")
    bad = (~np.isin(sentiment, (0, 1))) | ~np.asarray(pc.equal(table.column("label"), expected))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        _check_label(path, i + 2, table.column("label")[i].as_py(), int(sentiment[i]))
    return ImdbSplit(table.column("review").combine_chunks(), sentiment.astype(np.int32),
                     np.asarray(table.column("id")))


def load_imdb_tfds(split: str, data_dir: str | os.PathLike | None = None) -> ImdbSplit:
    """One split of TFDS ``imdb_reviews`` (plain_text) via ``tfds.data_source``, no download."""
    import tensorflow_datasets as tfds

    try:
        source = tfds.data_source("imdb_reviews", split=split, data_dir=data_dir, download=False)
    except (RuntimeError, OSError, ValueError, AssertionError) as err:   # TFDS's "not prepared" errors vary
        raise FileNotFoundError(
            f"TFDS imdb_reviews/{split} not found in {data_dir or '$TFDS_DATA_DIR/~/tensorflow_datasets'}"
            f" ({type(err).__name__}: {err}); prepare it once with TensorFlow where a network is "
            "available (tfds build imdb_reviews --file_format=array_record) and copy the folder, or "
            "use source='csv'") from err
    n = len(source)
    records = [source[i] for i in range(n)]      # one at a time: ~25k small records
    texts = [r["text"].decode("utf-8") if isinstance(r["text"], bytes) else str(r["text"])
             for r in records]
    labels = np.asarray([int(r["label"]) for r in records], np.int32)
    if n and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"TFDS imdb_reviews/{split}: labels must be 0/1, got {np.unique(labels)}")
    return ImdbSplit(pa.array(texts, pa.large_string()), labels)


def load_imdb(split: str, source: str = "csv", data_dir=None) -> ImdbSplit:
    """``split``: train | test; ``source``: csv | tfds."""
    if source == "csv":
        return load_imdb_csv(split, data_dir)
    if source == "tfds":
        return load_imdb_tfds(split, data_dir)
    raise ValueError(f"IMDB source {source!r} unknown; expected one of {SOURCES}")


def holdout_split(data: ImdbSplit, fraction: float = 0.2, seed: int = 0) -> tuple[ImdbSplit, ImdbSplit]:
    """(train, validation): ``fraction`` of each class to validation, chosen by a seeded permutation."""
    train_idx, val_idx = stratified_validation_split(data.labels, fraction, seed)
    return data.take(train_idx), data.take(val_idx)
