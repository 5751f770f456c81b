"""CIFAR-10: tiny python batches written by the test, the restricted unpickler, and the
archive mirror (checksums first, only the expected members taken)."""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from gankit.data import cifar, load_arrays, load_dataset
from gankit.data.errors import DataError
from gankit.data.safe_pickle import safe_loads
from gankit.data.sources import ensure_files

PER_BATCH = 6


def batch_bytes(i: int, protocol: int = 2, bytes_keys: bool = False) -> bytes:
    """A CIFAR-10-shaped batch whose pixels all equal 10 * batch + row, labels (row + i) % 10."""
    data = np.repeat((10 * i + np.arange(PER_BATCH, dtype=np.uint8))[:, None], 3072, axis=1)
    d = {"batch_label": f"batch {i}", "labels": [(r + i) % 10 for r in range(PER_BATCH)],
         "data": data, "filenames": [f"img{r}.png" for r in range(PER_BATCH)]}
    if bytes_keys:  # how Python 2 pickles look when read with encoding="bytes"
        d = {k.encode(): v for k, v in d.items()}
    return pickle.dumps(d, protocol=protocol)


def meta_bytes() -> bytes:
    return pickle.dumps({"label_names": list(cifar.CIFAR_CLASSES), "num_cases_per_batch": 10000},
                        protocol=2)


def tiny_batches() -> dict[str, bytes]:
    files = {f"data_batch_{i}": batch_bytes(i, protocol=2 if i % 2 else 5, bytes_keys=i == 3)
             for i in range(1, 6)}
    files["test_batch"] = batch_bytes(0)
    files["batches.meta"] = meta_bytes()
    return files


def pin(monkeypatch, files):
    monkeypatch.setattr(cifar.CIFAR10, "files",
                        {n: "md5:" + hashlib.md5(b).hexdigest() for n, b in files.items()})


def write_folder(folder, files):
    d = folder / cifar.BATCH_DIR
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_bytes(data)


def test_tiny_batches_from_a_folder(tmp_cache, tmp_path, monkeypatch):
    files = tiny_batches()
    pin(monkeypatch, files)
    write_folder(tmp_path, files)
    ds = load_dataset("cifar10", "train", data_dir=tmp_path)
    assert ds.shape == (3, 32, 32) and len(ds) == 4 * PER_BATCH
    assert ds.classes == cifar.CIFAR_CLASSES and ds.num_classes == 10
    assert ds.images[:, 0, 0, 0].tolist() == [10 * i + r for i in range(1, 5) for r in range(6)]
    assert ds.labels.tolist() == [(r + i) % 10 for i in range(1, 5) for r in range(6)]
    sizes = {s: len(load_arrays("cifar10", s, tmp_path).images) for s in cifar.SPLITS}
    assert sizes == {"train": 24, "val": 6, "test": 6, "train-full": 30}
    assert load_arrays("cifar10", "val", tmp_path).images[0, 2, 31, 31] == 50


def test_official_checksums_are_pinned():
    assert cifar.CIFAR10.files["data_batch_1"] == "md5:c99cafc152244af753f735de768cd75f"
    assert "md5:c58f30108f718f92721af3b95e74349a" in cifar.ARCHIVE_CHECKSUMS
    assert set(cifar.CIFAR10.files) == {*(f"data_batch_{i}" for i in range(1, 6)),
                                        "test_batch", "batches.meta"}


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataError) as e:
        cifar.read_batch(path)
    assert str(path) in str(e.value) and "refusing to load posix.system" in str(e.value)


def test_wrong_content_is_named(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataError, match=r"'data' must be a uint8 array of shape \(N, 3072\)"):
        cifar.read_batch(path)
    path.write_bytes(batch_bytes(1)[:500])
    with pytest.raises(DataError, match="truncated or corrupt"):
        cifar.read_batch(path)
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 42]}))
    with pytest.raises(DataError, match="labels outside 0..9"):
        cifar.read_batch(path)


def test_safe_loads_builds_arrays_of_either_numpy():
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    for protocol in (2, 5):
        np.testing.assert_array_equal(safe_loads(pickle.dumps(arr, protocol), "x"), arr)
    # A NumPy 1 pickle names numpy.core.multiarray; it loads without that module.
    old = pickle.dumps(arr, 2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(safe_loads(old, "x"), arr)


def archive(files: dict[str, bytes], extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = {f"{cifar.BATCH_DIR}/{n}": b for n, b in files.items()} | (extra or {})
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archive_from_a_mirror(tmp_cache, mirror, monkeypatch):
    files = tiny_batches()
    pin(monkeypatch, files)
    blob = archive(files, extra={"../../escape": b"x", f"{cifar.BATCH_DIR}/readme.html": b"hi"})
    monkeypatch.setattr(cifar, "ARCHIVE_CHECKSUMS", ("md5:" + hashlib.md5(blob).hexdigest(),
                                                     hashlib.sha256(blob).hexdigest()))
    mirror.files["cifar-10-python.tar.gz"] = blob
    monkeypatch.setattr(cifar.CIFAR10, "mirrors", [mirror.base + "cifar-10-python.tar.gz"])
    found = ensure_files(cifar.CIFAR10)
    assert sorted(p.name for p in (tmp_cache / "cifar10").iterdir()) == sorted(files)
    assert not (tmp_cache.parent / "escape").exists()
    assert found["test_batch"].read_bytes() == files["test_batch"]
    assert len(load_arrays("cifar10", "test").images) == PER_BATCH


def test_archive_with_wrong_checksum_writes_nothing(tmp_cache, mirror, monkeypatch, capsys):
    files = tiny_batches()
    pin(monkeypatch, files)
    mirror.files["c.tar.gz"] = archive(files)
    monkeypatch.setattr(cifar.CIFAR10, "mirrors", [mirror.base + "c.tar.gz"])
    with pytest.raises(DataError) as e:
        ensure_files(cifar.CIFAR10)
    assert "cifar-10-batches-py" in str(e.value)  # the hint: extract the archive you have
    assert "is not the official md5:c58f30108f718f92721af3b95e74349a" in capsys.readouterr().err
    assert not (tmp_cache / "cifar10").exists()
