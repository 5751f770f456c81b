"""`gankit data show`: the grid, the class distribution and the split table, for 1- and
3-channel datasets."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from gankit.cli.main import main
from gankit.data import cifar
from gankit.data.datasets import SplitArrays
from gankit.data.show import show_dataset, split_table


def check_outputs(paths, name):
    grid, dist, table = paths
    assert grid.name == f"{name}_grid.png" and dist.name == f"{name}_class_distribution.png"
    for png in (grid, dist):
        with Image.open(png) as im:
            assert im.format == "PNG" and im.width > 300 and im.height > 200
            assert len(np.unique(np.asarray(im.convert("L")))) > 10  # not blank
    return table.read_text()


def test_show_digits(tmp_path):
    text = check_outputs(show_dataset("digits", tmp_path), "digits")
    assert "| train | 1,297 | (1, 28, 28) | 0–255 | 10 |" in text
    assert "| val | 250 |" in text and "| test | 250 |" in text


def test_show_three_channels_and_cli(tmp_cache, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "data" / cifar.BATCH_DIR
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in cifar.CIFAR_FILES:
        d = ({"label_names": list(cifar.CIFAR_CLASSES)} if name == "batches.meta" else
             {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": list(range(6))})
        (folder / name).write_bytes(pickle.dumps(d))
    monkeypatch.setattr(cifar.CIFAR10, "files", dict.fromkeys(cifar.CIFAR_FILES))  # unchecked
    assert main(["data", "show", "cifar10", "--data-dir", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "| train | 24 | (3, 32, 32) |" in out and "wrote" in out
    text = check_outputs(sorted((tmp_path / "out").glob("cifar10_*.png"))[::-1]
                         + [tmp_path / "out" / "cifar10_splits.md"], "cifar10")
    assert "| test | 6 | (3, 32, 32) |" in text


def test_split_table_unlabelled():
    arr = SplitArrays(np.zeros((3, 1, 4, 4), np.uint8), None, ())
    text = split_table("x", {"train": arr})
    assert "| train | 3 | (1, 4, 4) | 0–0 | - |" in text


@pytest.mark.slow
def test_show_mnist(mnist_cache, tmp_path):
    text = check_outputs(show_dataset("mnist", tmp_path), "mnist")
    for row in ("| train | 50,000 | (1, 28, 28) | 0–255 | 10 |",
                "| val | 10,000 | (1, 28, 28) | 0–255 | 10 |",
                "| test | 10,000 | (1, 28, 28) | 0–255 | 10 |"):
        assert row in text
