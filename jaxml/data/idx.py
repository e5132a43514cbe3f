"""Reader for the IDX file format of MNIST and Fashion-MNIST (optionally gzipped), no TensorFlow.

An IDX file is a header followed by a dense array in C order:

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4 * d       the dimensions, each a big-endian uint32
    ...         prod(dims) * itemsize bytes of data, big-endian

The first four bytes read as one big-endian int are the "magic number": 2051 (0x00000803) for the
uint8 image files [N, 28, 28] and 2049 (0x00000801) for the uint8 label files [N].

Every failure names the file and what was expected: `IdxChecksumError` (SHA-256 of the file as
stored, i.e. of the .gz bytes, differs from the known one), `IdxFormatError` (not gzip, truncated
gzip stream, wrong magic, wrong shape, data shorter or longer than the header announces). A
partially readable file is never returned.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Sequence

import numpy as np

MAGIC_IMAGES_UINT8_3D = 0x00000803  # 2051
MAGIC_LABELS_UINT8_1D = 0x00000801  # 2049

# IDX element-type byte -> numpy dtype (big-endian where it matters).
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class IdxFileError(ValueError):
    """An IDX file exists but is not the file we expected. The message names the file."""


class IdxFormatError(IdxFileError):
    """Not gzip / truncated / wrong magic number / wrong shape / wrong byte count."""


class IdxChecksumError(IdxFileError):
    """The SHA-256 of the file differs from the known checksum of the original."""


def sha256_of_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes as stored on disk (for .gz files: of the compressed bytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _read_bytes(path: str, sha256: str | None) -> bytes:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    with open(path, "rb") as f:
        stored = f.read()
    if sha256 is not None:
        got = hashlib.sha256(stored).hexdigest()
        if got != sha256.lower():
            raise IdxChecksumError(
                f"{path}: SHA-256 mismatch: expected {sha256.lower()}, got {got} "
                f"({len(stored)} bytes). The file is corrupt or not the original; "
                "replace it with the original file (or pass verify_checksums=False for a deliberately "
                "modified copy)."
            )
    if path.endswith(".gz"):
        try:
            return gzip.decompress(stored)
        except EOFError as e:  # stream ends before the gzip end-of-stream marker
            raise IdxFormatError(
                f"{path}: truncated gzip stream ({len(stored)} bytes stored): {e}"
            ) from e
        except (gzip.BadGzipFile, zlib.error, OSError) as e:
            raise IdxFormatError(f"{path}: not a valid gzip file: {e}") from e
    return stored


def parse_idx(
    raw: bytes,
    *,
    name: str = "<bytes>",
    expected_magic: int | None = None,
    expected_shape: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Decodes the (already decompressed) bytes of one IDX file into an array in native byte order.

    Args:
      raw: the whole decompressed file.
      name: used in error messages (the file path).
      expected_magic: e.g. `MAGIC_IMAGES_UINT8_3D`; checked before anything else is trusted.
      expected_shape: dims to require; `None` entries match any size, e.g. `(None, 28, 28)`.

    Returns:
      array of shape dims (from the header) and the header's element type, native byte order.
    """
    if len(raw) < 4:
        raise IdxFormatError(f"{name}: {len(raw)} bytes, too short for the 4-byte IDX magic number")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise IdxFormatError(
            f"{name}: bad magic number {magic} (0x{magic:08x}), expected {expected_magic} "
            f"(0x{expected_magic:08x}); not an IDX file of the expected kind"
        )
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise IdxFormatError(
            f"{name}: bad magic number 0x{magic:08x}: expected 0x0000TTDD with element type TT in "
            f"{{{', '.join(f'0x{t:02x}' for t in _IDX_DTYPES)}}}"
        )
    dtype = _IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise IdxFormatError(
            f"{name}: truncated header: {ndim} dimensions need {header_bytes} header bytes, "
            f"file has {len(raw)}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if expected_shape is not None:
        ok = len(dims) == len(expected_shape) and all(
            e is None or e == d for d, e in zip(dims, expected_shape)
        )
        if not ok:
            shown = tuple("N" if e is None else e for e in expected_shape)
            raise IdxFormatError(f"{name}: header shape {dims}, expected {shown}")
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - header_bytes
    if have != want:
        kind = "truncated" if have < want else "trailing bytes"
        raise IdxFormatError(
            f"{name}: {kind}: header shape {dims} x {dtype.itemsize} byte(s) needs {want} data bytes, "
            f"found {have}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_bytes).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=False)


def read_idx(
    path: str | os.PathLike,
    *,
    expected_magic: int | None = None,
    expected_shape: Sequence[int | None] | None = None,
    sha256: str | None = None,
) -> np.ndarray:
    """Reads one IDX file (`.gz` decompressed on the fly), checking checksum, magic, shape, size.

    `sha256` is of the file as stored (the .gz bytes), as published for MNIST / Fashion-MNIST.
    Raises FileNotFoundError, IdxChecksumError or IdxFormatError, each naming `path`.
    """
    path = os.fspath(path)
    raw = _read_bytes(path, sha256)
    return parse_idx(raw, name=path, expected_magic=expected_magic, expected_shape=expected_shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Writes `array` as an IDX file (gzipped if `path` ends in .gz). Used to build test fixtures."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX element type")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    body = array.astype(_IDX_DTYPES[code], copy=False).tobytes(order="C")
    raw = header + body
    path = os.fspath(path)
    with open(path, "wb") as f:
        f.write(gzip.compress(raw, mtime=0) if path.endswith(".gz") else raw)
