"""IDX reading and writing: round trips, and clear errors for broken files."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from gankit.data.errors import DataError
from gankit.fileio import atomic_write

from gankit.data.idx import (encode_idx, parse_idx, read_idx,
                             read_images_labels, write_idx)


def tiny_images(n: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_plain_and_gz(tmp_path, name):
    images = tiny_images()
    write_idx(tmp_path / name, images)
    raw = (tmp_path / name).read_bytes()
    assert raw[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")
    back = read_idx(tmp_path / name, expect_ndim=3)
    np.testing.assert_array_equal(back, images)
    assert back.dtype == np.uint8 and back.flags.writeable


def test_header_is_the_official_layout():
    data = encode_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert data[:4] == bytes([0, 0, 0x08, 2])
    assert struct.unpack(">II", data[4:12]) == (2, 3)
    assert data[12:] == bytes(range(6))


def test_gzip_recognised_by_content_not_name(tmp_path):
    images = tiny_images(2)
    (tmp_path / "renamed").write_bytes(gzip.compress(encode_idx(images)))
    np.testing.assert_array_equal(read_idx(tmp_path / "renamed"), images)


def test_truncated_file_is_rejected_with_what_to_do(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(encode_idx(tiny_images(3))[:-100])
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "truncated" in msg and "fetch it again" in msg
    assert "(3, 28, 28)" in msg


def test_truncated_gzip_is_rejected(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(tiny_images(3)))[:-30])
    with pytest.raises(DataError, match="truncated or corrupt") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_too_long_file_is_rejected(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(encode_idx(tiny_images(2)) + b"\x00")
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(path)


def test_wrong_magic_number(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(b"PK\x03\x04" + bytes(100))  # e.g. a zip saved under the IDX name
    with pytest.raises(DataError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg and "wrong magic number 0x504b0304" in msg
    assert "not an IDX file" in msg


@pytest.mark.parametrize("data, words", [(b"\x00\x00", "too short"),
                                         (bytes([0, 0, 8, 3, 0, 0]), "inside its header")])
def test_header_too_short(data, words):
    with pytest.raises(DataError, match=words):
        parse_idx(data, "f")


def test_labels_file_given_for_images(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="has 1 dimensions, expected 3"):
        read_idx(tmp_path / "labels", expect_ndim=3)


def test_images_and_labels_must_agree(tmp_path):
    write_idx(tmp_path / "img", tiny_images(4))
    write_idx(tmp_path / "lab", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="4 images but .* 3 labels"):
        read_images_labels(tmp_path / "img", tmp_path / "lab")
    write_idx(tmp_path / "lab", np.array([0, 1, 2, 10], np.uint8))
    with pytest.raises(DataError, match="label 10 is out of range 0..9"):
        read_images_labels(tmp_path / "img", tmp_path / "lab", num_classes=10)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope")


def test_other_dtypes_parse_big_endian():
    header = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2)
    arr = parse_idx(header + struct.pack(">ii", -5, 70000))
    assert arr.tolist() == [-5, 70000] and arr.dtype == np.int32


def test_atomic_write_interrupted_leaves_nothing(tmp_path, monkeypatch):
    import os
    target = tmp_path / "sub" / "file"

    def boom(fd):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"x" * 1000)
    assert list(target.parent.iterdir()) == []


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import os
    target = tmp_path / "file"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["file"]
