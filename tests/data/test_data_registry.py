"""The dataset registry: names, the four splits, errors, `digits`, and that the data path
stays free of PyTorch until tensors are asked for."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gankit.data import DATASETS, DataError, load_arrays, load_dataset
from gankit.data.builtin import bilinear_matrix
from gankit.data.datasets import ImageDataset, SplitArrays, from_numpy, register_dataset


def test_builtin_names():
    assert {"mnist", "fashion-mnist", "cifar10", "quickdraw", "digits"} <= set(DATASETS)


def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="unknown dataset 'mnits'; available: .*mnist"):
        load_dataset("mnits")
    with pytest.raises(DataError, match="unknown split 'training'; choose one of train, val"):
        load_dataset("digits", "training")


def test_digits_splits_and_content():
    sizes = {s: len(load_arrays("digits", s).images) for s in ("train", "val", "test",
                                                                 "train-full")}
    assert sizes == {"train": 1297, "val": 250, "test": 250, "train-full": 1547}
    train = load_arrays("digits", "train")
    assert train.images.shape[1:] == (1, 28, 28) and train.images.dtype == np.uint8
    assert train.labels[:10].tolist() == list(range(10))
    assert train.images.max() == 255 and train.images.min() == 0
    assert not train.images[:, :, :4].any() and not train.images[:, :, :, 24:].any()  # 20x20 box
    assert train.images[:, :, 4:24, 4:24].mean() > 40  # the digits themselves are there


def test_bilinear_matrix_matches_torch():
    import torch
    import torch.nn.functional as F
    x = np.random.default_rng(0).random((3, 8, 8))
    m = bilinear_matrix(8, 20)
    ours = np.einsum("ij,njk,lk->nil", m, x, m)
    ref = F.interpolate(torch.from_numpy(x)[:, None], size=(20, 20), mode="bilinear",
                        align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    np.testing.assert_allclose(m.sum(1), 1.0)


def test_limit_and_dataset_fields():
    ds = load_dataset("digits", "val", limit=7)
    assert isinstance(ds, ImageDataset) and len(ds) == 7 and ds.shape == (1, 28, 28)
    assert ds.classes == tuple("0123456789") and ds.labelled
    with pytest.raises(DataError, match="positive"):
        ds.subset(0)


def test_a_loader_returning_an_image_dataset_can_be_registered(monkeypatch):
    monkeypatch.setitem(DATASETS, "blank", None)

    @register_dataset("blank")
    def blank(split, data_dir=None):
        return from_numpy("blank", split, np.zeros((4, 2, 2), np.uint8), None, ())

    assert len(load_dataset("blank", "test", limit=2)) == 2
    arr = load_arrays("blank", "val")
    assert isinstance(arr, SplitArrays) and arr.images.shape == (4, 1, 2, 2) and arr.labels is None


def test_data_package_imports_neither_torch_nor_the_datasets():
    code = ("import sys, gankit.data; from gankit.data import DataError, load_arrays;"
            "a = load_arrays('digits', 'test'); assert 'torch' not in sys.modules, 'torch'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
