"""Datasets (MNIST and friends) held in memory, and a fast in-memory batch loader.

Names are imported on first use, so `from gankit.data import DataError` (which the CLI does
for every command) costs nothing, and only BatchLoader and load_dataset bring in PyTorch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gankit.data.errors import DataError

if TYPE_CHECKING:
    from gankit.data.datasets import (DATASETS, ImageDataset, SplitArrays, load_arrays,
                                      load_dataset, qualified_name)
    from gankit.data.loader import BatchLoader

_LAZY = {"DATASETS": "datasets", "ImageDataset": "datasets", "SplitArrays": "datasets",
         "load_arrays": "datasets", "load_dataset": "datasets", "qualified_name": "datasets",
         "BatchLoader": "loader"}

__all__ = ["DATASETS", "BatchLoader", "DataError", "ImageDataset", "SplitArrays", "load_arrays",
           "load_dataset", "qualified_name"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"gankit.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'gankit.data' has no attribute {name!r}")
