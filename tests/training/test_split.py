"""`data.split`: which images a run trains on (reports 001, 003, 004 trained on all 60k)."""
from __future__ import annotations

import pytest

from gankit.config import ConfigError, resolve
from gankit.training.loop import Trainer
from gankit.training.validate import validate


def test_train_full_gives_60000_images(mnist_cache, tmp_path) -> None:
    base = {"device": "cpu", "val_diagnostics": 16}
    full = Trainer(resolve("dcgan-r004", {**base, "data.split": "train-full"}), tmp_path / "a",
                   progress=False)
    assert len(full.train_ds) == 60_000
    assert len(full.val_ds) == 16  # validation diagnostics stay on `val`
    train = Trainer(resolve("dcgan-r004", {**base, "data.split": "train"}), tmp_path / "b",
                    progress=False)
    assert len(train.train_ds) == 50_000


def test_presets_train_on_what_their_report_used() -> None:
    splits = {p: resolve(p).data.split for p in ("dcgan-r001", "cdcgan-r001", "mlp-gan-r003",
                                                 "dcgan-r004", "mlp-cgan-m4",
                                                 "resnet-cgan-r002")}
    assert splits == {"dcgan-r001": "train-full", "cdcgan-r001": "train-full",
                      "mlp-gan-r003": "train-full", "dcgan-r004": "train-full",
                      "mlp-cgan-m4": "train", "resnet-cgan-r002": "train"}


def test_only_training_splits_are_accepted() -> None:
    with pytest.raises(ConfigError, match=r"data.split='test' is not valid; choose one of: "
                                          r"train, train-full"):
        validate(resolve("default", {"data.split": "test"}), data=False)
