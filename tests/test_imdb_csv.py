"""The IMDB CSV loader (``jaxml.data.imdb``) on damaged and oversized files: non-UTF-8 bytes name the file and
line; a 10 MB review loads and csv's field size limit is restored."""
import csv
import gzip
import pathlib

import numpy as np
import pytest

from jaxml.data import imdb


def _write_imdb(root, body: bytes):
    folder = pathlib.Path(root) / "imdb"
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / "aclImdb_train.csv.gz", "wb") as f:
        f.write(b"path,id,rating,label,sentiment,review\n" + body)
    return root


def test_imdb_non_utf8_byte_names_file_and_line(tmp_path):
    body = (b"train/pos/0_9.txt,0,9,pos,1,Great\n"
            b"train/neg/0_2.txt,0,2,neg,0,\"Dull,\n and caf\xe9 bad\"\n")   # Latin-1 e-acute inside a quoted review
    root = _write_imdb(tmp_path, body)
    with pytest.raises(ValueError, match=r"aclImdb_train\.csv\.gz: line 4: not valid UTF-8 \(byte 0xe9"):
        imdb.load_imdb_csv("train", root)


def test_imdb_ten_megabyte_review_loads_and_field_limit_is_restored(tmp_path):
    review = "a wonderful film " * 620_000                               # ~10.5 MB, over csv's 128 KiB limit
    body = (b"train/pos/0_9.txt,0,9,pos,1,Great\n"
            + f'train/pos/1_8.txt,1,8,pos,1,"{review}"\n'.encode()
            + b"train/neg/0_2.txt,0,2,neg,0,Dull\n")
    before = csv.field_size_limit()
    split = imdb.load_imdb_csv("train", _write_imdb(tmp_path, body))
    assert csv.field_size_limit() == before
    assert split.texts.to_pylist() == ["Great", review, "Dull"]
    np.testing.assert_array_equal(split.labels, [1, 1, 0])
    # A bad row after the long one is still found by the slow path, naming its line.
    bad = body + b"train/neg/1_1.txt,1,1,neg,1,Odd\n"
    with pytest.raises(ValueError, match=r"line 5 \(data row 4\): label 'neg' disagrees with sentiment 1"):
        imdb.load_imdb_csv("train", _write_imdb(tmp_path, bad))
    assert csv.field_size_limit() == before
