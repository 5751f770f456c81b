"""Fashion-MNIST: tiny IDX files in a folder, the registry entry, and (when Debian's package
dataset-fashion-mnist is installed) the pinned checksums against its official files."""
from __future__ import annotations

import numpy as np
import pytest

from gankit.data import fashion, load_arrays, load_dataset
from gankit.data.errors import DataError
from gankit.data.idx import encode_idx, read_bytes, write_idx
from gankit.data.mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from gankit.data.sources import ensure_files, sha256_bytes

TINY_SPLITS = {"train": (TRAIN_IMAGES, TRAIN_LABELS, slice(0, 8)),
               "val": (TRAIN_IMAGES, TRAIN_LABELS, slice(8, 10)),
               "train-full": (TRAIN_IMAGES, TRAIN_LABELS, slice(0, 10)),
               "test": (TEST_IMAGES, TEST_LABELS, slice(0, 4))}


def tiny_fashion(folder, monkeypatch, gz=True):
    """Write a 10 + 4 image Fashion-MNIST-shaped set and pin its checksums in FASHION."""
    rng = np.random.default_rng(1)
    arrays = {TRAIN_IMAGES: rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              TRAIN_LABELS: np.arange(10, dtype=np.uint8),
              TEST_IMAGES: rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
              TEST_LABELS: np.array([9, 0, 0, 1], np.uint8)}
    for name, arr in arrays.items():
        write_idx(folder / (name + (".gz" if gz else "")), arr)
    monkeypatch.setattr(fashion.FASHION, "files",
                        {n: sha256_bytes(encode_idx(a)) for n, a in arrays.items()})
    monkeypatch.setattr(fashion.FASHION, "extra_folders", [])
    monkeypatch.setattr(fashion, "SPLITS", TINY_SPLITS)
    return arrays


def test_tiny_fashion_from_a_folder(tmp_cache, tmp_path, monkeypatch):
    arrays = tiny_fashion(tmp_path, monkeypatch)
    ds = load_dataset("fashion-mnist", "train", data_dir=tmp_path)
    assert ds.shape == (1, 28, 28) and len(ds) == 8
    assert ds.classes == fashion.FASHION_CLASSES and ds.num_classes == 10
    assert ds.classes[9] == "Ankle boot" and ds.classes[0] == "T-shirt/top"
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), arrays[TRAIN_IMAGES][:8])
    test = load_arrays("fashion-mnist", "test", data_dir=tmp_path)
    assert test.labels.tolist() == [9, 0, 0, 1]
    val = load_arrays("fashion-mnist", "val", data_dir=tmp_path)
    assert val.labels.tolist() == [8, 9]


def test_tiny_fashion_checksum_mismatch(tmp_cache, tmp_path, monkeypatch):
    tiny_fashion(tmp_path, monkeypatch, gz=False)
    write_idx(tmp_path / TEST_LABELS, np.array([9, 0, 0, 2], np.uint8))
    with pytest.raises(DataError, match=f"{TEST_LABELS}: checksum .* official fashion-mnist"):
        load_arrays("fashion-mnist", "test", data_dir=tmp_path)


def test_splits_too_short_for_the_file(tmp_cache, tmp_path, monkeypatch):
    tiny_fashion(tmp_path, monkeypatch)
    monkeypatch.setattr(fashion, "SPLITS", fashion.MNIST_SPLITS)  # needs 60k images
    with pytest.raises(DataError, match="has 10 images, fewer than the 50000"):
        load_arrays("fashion-mnist", "train", data_dir=tmp_path)


def test_debian_folder_is_registered():
    assert fashion.DEBIAN_FOLDER in fashion.FASHION.extra_folders
    assert str(fashion.DEBIAN_FOLDER) == "/usr/share/datasets/fashion-mnist"
    assert "apt-get install dataset-fashion-mnist" in fashion.FASHION.hint


@pytest.mark.skipif(not fashion.DEBIAN_FOLDER.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_files_match_the_pinned_checksums(tmp_cache):
    found = ensure_files(fashion.FASHION)  # empty cache: verified and copied from Debian's files
    assert all(p.parent == tmp_cache / "fashion-mnist" for p in found.values())
    for name, path in found.items():
        assert sha256_bytes(read_bytes(path)) == fashion.FASHION_SHA256[name]
    test = load_arrays("fashion-mnist", "test")
    assert test.images.shape == (10_000, 1, 28, 28)
    assert np.bincount(test.labels).tolist() == [1000] * 10
