"""Quick, Draw!: tiny .npy bitmaps written by the test, categories in the dataset name, the
deterministic 80/10/10 split, and the mirror with structural checks."""
from __future__ import annotations

import io

import numpy as np
import pytest

from gankit.data import load_arrays, load_dataset, qualified_name, quickdraw
from gankit.data.errors import DataError


def bitmaps(n: int, first: int) -> np.ndarray:
    """n drawings (N, 784) whose pixels all hold their own number first, first + 1, ..."""
    return np.repeat((first + np.arange(n)).astype(np.uint8)[:, None], 784, axis=1)


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.fixture
def qd_folder(tmp_path):
    np.save(tmp_path / "sheep.npy", bitmaps(20, 0))
    np.save(tmp_path / "cat.npy", bitmaps(30, 100))
    return tmp_path


def test_default_is_sheep(tmp_cache, qd_folder):
    ds = load_dataset("quickdraw", "train", data_dir=qd_folder)
    assert ds.classes == ("sheep",) and ds.shape == (1, 28, 28)
    assert ds.labels.tolist() == [0] * 16
    assert ds.images[:, 0, 0, 0].tolist() == list(range(16))  # file order kept


def test_split_last_10_percent_test_then_val(tmp_cache, qd_folder):
    rows = {s: load_arrays("quickdraw:sheep", s, qd_folder).images[:, 0, 5, 5].tolist()
            for s in ("train", "val", "test", "train-full")}
    assert rows == {"train": list(range(16)), "val": [16, 17], "test": [18, 19],
                    "train-full": list(range(18))}


def test_two_categories_by_name(tmp_cache, qd_folder):
    ds = load_dataset("quickdraw:sheep,cat", "test", data_dir=qd_folder)
    assert ds.name == "quickdraw:sheep,cat" and ds.classes == ("sheep", "cat")
    pixels, labels = ds.images[:, 0, 0, 0].tolist(), ds.labels.tolist()
    assert sorted(zip(labels, pixels)) == [(0, 18), (0, 19), (1, 127), (1, 128), (1, 129)]
    again = load_dataset("quickdraw:sheep,cat", "test", data_dir=qd_folder)
    assert again.labels.tolist() == labels  # the fixed shuffle is the same every time
    train = load_arrays("quickdraw:sheep,cat", "train", qd_folder)
    assert np.bincount(train.labels).tolist() == [16, 24]
    assert set(train.labels[:10].tolist()) == {0, 1}  # data.limit takes both categories


def test_qualified_name_from_config_classes():
    assert qualified_name("quickdraw", ["sheep", "cat"]) == "quickdraw:sheep,cat"
    assert qualified_name("mnist", None) == "mnist"
    with pytest.raises(DataError, match="fixed classes"):
        qualified_name("mnist", ["0"])
    with pytest.raises(DataError, match="not both"):
        qualified_name("quickdraw:sheep", ["cat"])


@pytest.mark.parametrize("name, words", [("quickdraw:sheep,,cat", "bad Quick, Draw! category"),
                                         ("quickdraw:../etc", "bad Quick, Draw! category"),
                                         ("quickdraw:cat,cat", "repeated"),
                                         ("mnist:7", "takes no argument")])
def test_bad_names(name, words):
    with pytest.raises(DataError, match=words):
        load_arrays(name, "train")


def test_missing_category_says_where_and_how(tmp_cache, qd_folder, monkeypatch):
    monkeypatch.setattr(quickdraw, "QUICKDRAW_MIRROR", "http://127.0.0.1:9/")
    with pytest.raises(DataError) as e:
        load_arrays("quickdraw:sheep,dog", "train", qd_folder)
    assert "dog.npy" in str(e.value) and "gankit data fetch quickdraw:sheep,dog" in str(e.value)


def test_not_bitmaps_is_an_error(tmp_cache, tmp_path):
    np.save(tmp_path / "sheep.npy", np.zeros((20, 28 * 28), np.float32))
    with pytest.raises(DataError, match=r"sheep.npy: expected Quick, Draw! bitmaps.*float32"):
        load_arrays("quickdraw", "train", tmp_path)
    (tmp_path / "sheep.npy").write_bytes(npy_bytes(bitmaps(20, 0))[:300])
    with pytest.raises(DataError, match="not a readable .npy file"):
        load_arrays("quickdraw", "train", tmp_path)
    np.save(tmp_path / "sheep.npy", bitmaps(5, 0))
    with pytest.raises(DataError, match="only 5 drawings"):
        load_arrays("quickdraw", "train", tmp_path)


def test_mirror_downloads_each_category_once(tmp_cache, mirror, monkeypatch):
    mirror.files["qd/sheep.npy"] = npy_bytes(bitmaps(20, 0))
    mirror.files["qd/ice%20cream.npy"] = npy_bytes(bitmaps(10, 50))
    monkeypatch.setattr(quickdraw, "QUICKDRAW_MIRROR", mirror.base + "qd/")
    assert len(load_arrays("quickdraw", "val").images) == 2
    assert (tmp_cache / "quickdraw" / "sheep.npy").is_file()
    ds = load_arrays("quickdraw:sheep,ice cream", "test")  # only the new category is fetched
    assert mirror.requests == ["qd/sheep.npy", "qd/ice%20cream.npy"]
    assert ds.classes == ("sheep", "ice cream") and len(ds.images) == 3


def test_mirror_serving_something_else_writes_nothing(tmp_cache, mirror, monkeypatch):
    mirror.files["sheep.npy"] = b"<html>not found</html>"
    monkeypatch.setattr(quickdraw, "QUICKDRAW_MIRROR", mirror.base)
    with pytest.raises(DataError, match="could not find quickdraw"):
        load_arrays("quickdraw", "train")
    assert not (tmp_cache / "quickdraw").exists()
