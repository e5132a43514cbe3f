"""Put the datasets a user downloaded where jaxml reads them (``jaxml-data``, ``jaxml/cli/data.py``).

- ``prepare_imdb(archive, data_dir)``: the official ``aclImdb_v1.tar.gz`` (members
  ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``) -> ``<data_dir>/imdb/aclImdb_{train,test}.csv.gz``,
  the format ``jaxml.data.imdb`` reads: header ``path,id,rating,label,sentiment,review``, one row per review
  file, pos then neg, each by ascending id, the text as in the file (UTF-8), gzip with no name and MTIME 0, so
  the same reviews always give the same bytes (``IMDB_CSV_SHA256``). ``train/unsup`` and the other files
  are skipped.
- ``prepare_idx(name, source_dir, data_dir)``: the four original ``.gz`` IDX files of ``mnist`` or
  ``fashion_mnist``, each checked against its published SHA-256 (``images.IDX_SHA256``) and its IDX header,
  copied to ``<data_dir>/<name>/``.

Files are written to a temporary name and renamed, after every check has passed; a file already at the
destination with the same bytes is kept, one with other bytes is never overwritten.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import tarfile
import tempfile

from jaxml.data import idx, images, imdb

# SHA-256 of the two CSV files this module writes from the 50,000 labelled reviews of aclImdb v1.0.
IMDB_CSV_SHA256 = {
    "aclImdb_train.csv.gz": "2227cbcc6a3237144a37c868196d6b564167b00ddfc90fae7bd9ef03cae04703",
    "aclImdb_test.csv.gz": "fcd93c17868d7ff95724c7c131f312a1d5c981c17ccadfcbe0b7ddf77b9687cf",
}
IMDB_ORIGIN = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
_REVIEW = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_IDX_MAGIC = {"images": (2051, (None, 28, 28)), "labels": (2049, (None,))}


def data_root(data_dir: str | os.PathLike | None) -> str:
    """``data_dir``, else ``$JAXML_DATA_DIR``; neither fails saying so."""
    root = data_dir or os.environ.get("JAXML_DATA_DIR")
    if not root:
        raise ValueError("no data folder: pass --data_dir=DIR (data_dir=) or set $JAXML_DATA_DIR")
    return os.fspath(root)


def _same(path: str, data: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read() == data


def _place(files: dict[str, bytes]) -> dict[str, str]:
    """Write each {path: bytes} through a temporary file and a rename, after checking all of them: a path that
    already holds these bytes is ``"kept"``, one holding other bytes fails naming it before anything is
    written; returns {path: "written" | "kept"}."""
    for path, data in files.items():
        if os.path.exists(path) and not _same(path, data):
            raise FileExistsError(f"{path} exists with other contents: move it away to replace it")
    done = {}
    for path, data in files.items():
        if os.path.exists(path):
            done[path] = "kept"
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        done[path] = "written"
    return done


def imdb_csv_bytes(rows) -> bytes:
    """``rows`` (``imdb.COLUMNS`` order, header first) as jaxml's gzipped CSV: ``csv`` minimal quoting, "\\n"
    line ends, UTF-8; gzip level 9, no file name, MTIME 0 (the bytes depend only on the rows)."""
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\n").writerows(rows)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return out.getvalue()


def read_imdb_archive(archive: str | os.PathLike) -> tuple[dict[str, list[tuple]], bytes | None]:
    """{split: rows} of the labelled reviews in an aclImdb archive (pos then neg, ascending id) and the
    archive's ``aclImdb/README`` (None if absent). A review that is not UTF-8 or holds a line break, a rating
    that disagrees with its folder, or a split without reviews fails naming the member."""
    reviews, readme = {s: [] for s in imdb.SPLITS}, None
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.removeprefix("./") == "aclImdb/README":
                    readme = tar.extractfile(member).read()
                match = _REVIEW.match(member.name)
                if not (match and member.isfile()):
                    continue
                split, label, review_id, rating = match[1], match[2], int(match[3]), int(match[4])
                if not (1 <= rating <= 4 if label == "neg" else 7 <= rating <= 10):
                    raise ValueError(f"{archive}: {member.name}: rating {rating} disagrees with {label!r} "
                                     "(neg: 1-4, pos: 7-10)")
                try:
                    text = tar.extractfile(member).read().decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ValueError(f"{archive}: {member.name}: not UTF-8 ({err})") from None
                if "\n" in text or "\r" in text:
                    raise ValueError(f"{archive}: {member.name}: a review holds a line break (the CSV format "
                                     "keeps one review per line)")
                reviews[split].append((label == "neg", review_id, member.name, rating, label, text))
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as err:
        raise ValueError(f"{archive}: not a readable aclImdb tar archive ({type(err).__name__}: {err})") from None
    rows = {}
    for split, found in reviews.items():
        if not found:
            raise ValueError(f"{archive}: no reviews under aclImdb/{split}/{{pos,neg}}/<id>_<rating>.txt "
                             f"(expected the layout of {IMDB_ORIGIN})")
        found.sort()
        rows[split] = [imdb.COLUMNS] + [(name.split("aclImdb/", 1)[1], i, rating, label, int(label == "pos"),
                                         text) for _, i, name, rating, label, text in found]
    return rows, readme


def prepare_imdb(archive: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``aclImdb_v1.tar.gz`` -> ``<data_dir>/imdb/aclImdb_{train,test}.csv.gz`` (+ ``aclImdb_README.txt``);
    returns {path: "written" | "kept"}. Nothing is written unless the whole archive reads."""
    folder = os.path.join(data_root(data_dir), "imdb")
    rows, readme = read_imdb_archive(archive)
    files = {os.path.join(folder, f"aclImdb_{split}.csv.gz"): imdb_csv_bytes(rows[split]) for split in imdb.SPLITS}
    if readme is not None:
        files[os.path.join(folder, "aclImdb_README.txt")] = readme
    return _place(files)


def _check_idx(name: str, path: str, data: bytes, sha256: str | None) -> int:
    """The number of records in one IDX .gz file, checked (SHA-256 when given, gzip, magic, shape)."""
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise idx.IdxChecksumError(
            f"{path}: SHA-256 {hashlib.sha256(data).hexdigest()} is not the published {sha256} of {name}'s "
            f"{os.path.basename(path)}: another file, or a damaged download")
    magic, shape = _IDX_MAGIC["images" if "-images-" in path else "labels"]
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError) as err:
        raise idx.IdxFormatError(f"{path}: not a gzip file ({err})") from None
    return len(idx.parse_idx(raw, name=path, expected_magic=magic, expected_shape=shape))


def prepare_idx(name: str, source_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                verify: bool = True) -> dict[str, str]:
    """The four original ``.gz`` files of ``name`` in ``source_dir`` -> ``<data_dir>/<name>/``; returns
    {path: "written" | "kept"}. ``verify=False`` skips the SHA-256 (headers and counts are still checked):
    for files made elsewhere, e.g. tests. Nothing is written unless all four pass."""
    if name not in images.DATASETS:
        raise ValueError(f"dataset {name!r} unknown; expected one of {images.DATASETS}")
    folder = os.path.join(data_root(data_dir), name)
    files = {}
    for split, pair in images.IDX_FILES.items():
        counts = []
        for file in pair:
            path = os.path.join(os.fspath(source_dir), file)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{path} not found: {source_dir} must hold the four original files "
                                        f"{[f for p in images.IDX_FILES.values() for f in p]} of {name}")
            with open(path, "rb") as f:
                data = f.read()
            counts.append(_check_idx(name, path, data, images.IDX_SHA256[name][file] if verify else None))
            files[os.path.join(folder, file)] = data
        if counts[0] != counts[1]:
            raise idx.IdxFormatError(f"{source_dir}: {split}: {counts[0]} images but {counts[1]} labels")
    return _place(files)


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check(data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """{path: "ok" | "missing" | "differs"} of every file jaxml reads from ``data_dir``, against the
    published checksums (IDX) and those of the CSVs made from aclImdb v1.0 (``IMDB_CSV_SHA256``)."""
    root = data_root(data_dir)
    want = {os.path.join(root, name, f): sha for name in images.DATASETS for f, sha in images.IDX_SHA256[name].items()}
    want.update({os.path.join(root, "imdb", f): sha for f, sha in IMDB_CSV_SHA256.items()})
    return {path: "missing" if not os.path.isfile(path) else "ok" if sha256_of(path) == sha else "differs"
            for path, sha in want.items()}
