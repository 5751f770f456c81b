"""Read and write IDX files (the MNIST / Fashion-MNIST container), plain or gzip.

Every read checks the magic number, the dimensions and that the byte count matches
the header, so a truncated download is caught here and not as a shape error later.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from gankit.data.errors import DataError
from gankit.fileio import atomic_write

__all__ = ["DataError", "encode_idx", "parse_idx", "read_bytes",
           "read_idx", "read_images_labels", "write_idx"]

# IDX type codes (third byte of the magic number); MNIST only uses 0x08 (unsigned byte).
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the file's bytes, gunzipped if it is gzip data.

    Gzip is recognised by its first two bytes, not by the name, so a `.gz` file that was
    renamed (or a plain file named `.gz`) is still read correctly.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if data[:2] == GZIP_MAGIC:
            data = gzip.decompress(data)
        return data
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read it ({type(e).__name__}: {e}); the file is "
                        "truncated or corrupt: delete it and fetch it again") from None


def parse_idx(data: bytes, name: str = "<bytes>", expect_ndim: int | None = None) -> np.ndarray:
    """Parse IDX bytes into a (writable, native-endian) array, checking magic number,
    dimensions and size."""
    if len(data) < 4:
        raise DataError(f"{name}: only {len(data)} bytes, too short for an IDX header; "
                        "the file is truncated: delete it and fetch it again")
    zero, code, ndim = data[0:2], data[2], data[3]
    if zero != b"\x00\x00" or code not in _DTYPES or ndim == 0:
        raise DataError(f"{name}: wrong magic number 0x{data[:4].hex()} (an IDX file starts with "
                        "00 00 <type> <ndim>, e.g. 0x00000803 for images); it is not an IDX file "
                        "or it is corrupt: delete it and fetch it again")
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(f"{name}: has {ndim} dimensions, expected {expect_ndim} "
                        f"(magic 0x{data[:4].hex()}); is it the right file?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated inside its header; delete it and fetch it again")
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    dtype = np.dtype(_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(f"{name}: {what}: header gives dimensions {dims} = {expected} bytes, "
                        f"file has {len(data)}; delete it and fetch it again")
    # astype copies: the result is writable and owns its memory (frombuffer alone is read-only).
    native = dtype.newbyteorder("=")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(native)


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or gzip)."""
    return parse_idx(read_bytes(path), str(path), expect_ndim)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (the inverse of parse_idx for MNIST data)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"encode_idx writes uint8 arrays only, got {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"encode_idx needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzip-compressed if the name ends in .gz), atomically."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write(path, data)


def read_images_labels(images_path: str | os.PathLike, labels_path: str | os.PathLike,
                       num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a pair of IDX files (images (N, H, W), labels (N,)) and check that they agree.

    With `num_classes`, labels must also lie in 0..num_classes-1.
    """
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if len(images) != len(labels):
        raise DataError(f"{images_path} has {len(images)} images but {labels_path} has "
                        f"{len(labels)} labels; one of them is from another dataset or truncated")
    if num_classes is not None and len(labels) and int(labels.max()) >= num_classes:
        raise DataError(f"{labels_path}: label {int(labels.max())} is out of range "
                        f"0..{num_classes - 1}; is it the labels file of this dataset?")
    return images, labels
