"""Fixtures for training tests: tiny configs on the bundled `digits` set (no download)."""
from __future__ import annotations

import pytest

from gankit.config import TrainConfig, resolve

TINY = {"data.name": "digits", "data.limit": 256, "val_diagnostics": 64, "epochs": 2,
        "batch_size": 32, "sample_every": 1, "checkpoint_every": 1, "device": "cpu"}


def tiny(preset: str = "seed000-m4", **over) -> TrainConfig:
    """A preset shrunk to seconds: 256 digits images, 2 epochs."""
    return resolve(preset, {**TINY, **{k.replace("__", "."): v for k, v in over.items()}})


@pytest.fixture
def tiny_cfg():
    return tiny
