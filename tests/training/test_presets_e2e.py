"""Every preset trains one short epoch end to end (on the bundled digits set)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.config import ConfigError, preset_names, resolve
from gankit.data import datasets
from gankit.data.datasets import ImageDataset
from gankit.training.loop import Trainer
from tests.conftest import tiny


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("default")
                                  else n for n in preset_names()])
def test_preset_trains_one_epoch(name: str, tmp_path: Path) -> None:
    over = {"epochs": 1, "data__limit": 96}
    if resolve(name).model.arch in ("resnet", "dcgan"):
        over.update(model__ngf=16, model__ndf=16)
    cfg = tiny(name, **over)
    Trainer(cfg, tmp_path, progress=False).run()
    rec = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert rec["epoch"] == 1 and rec["train/d_loss"] == rec["train/d_loss"]  # not NaN
    assert (tmp_path / "grids" / "epoch_0001.png").exists()


def test_conditional_model_on_unlabelled_data_is_refused(tmp_path: Path, monkeypatch) -> None:
    def unlabelled(split, data_dir=None):
        return ImageDataset("blank", split, torch.zeros(8, 1, 28, 28, dtype=torch.uint8), None,
                            ())
    monkeypatch.setitem(datasets.DATASETS, "blank", unlabelled)
    cfg = tiny("mlp-cgan-m4", data__name="blank")
    with pytest.raises(ConfigError, match="needs a labelled dataset"):
        Trainer(cfg, tmp_path, progress=False)
