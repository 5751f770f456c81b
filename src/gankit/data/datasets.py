"""Datasets as one uint8 tensor each, with their shape and class names, behind one registry.

A dataset describes itself (channels, height, width, classes) so that models can size
themselves from it. Adding a dataset is one loader function plus one entry in DATASETS.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from gankit.data.idx import DataError

DIGIT_CLASSES = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class ImageDataset:
    """A split held in memory: images (N, C, H, W) uint8 and labels (N,) int64 or None."""
    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor | None
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def subset(self, limit: int | None) -> "ImageDataset":
        """The first `limit` images (report 000's `data.limit` for quick runs)."""
        if limit is None or limit >= len(self):
            return self
        if limit <= 0:
            raise DataError(f"data.limit must be positive, got {limit}")
        labels = None if self.labels is None else self.labels[:limit]
        return ImageDataset(self.name, self.split, self.images[:limit], labels, self.classes)


def from_numpy(name: str, split: str, images: np.ndarray, labels: np.ndarray | None,
               classes: tuple[str, ...]) -> ImageDataset:
    """Build an ImageDataset from (N, H, W) or (N, C, H, W) uint8 arrays."""
    if images.ndim == 3:
        images = images[:, None]
    t_labels = None if labels is None else torch.from_numpy(np.asarray(labels, np.int64))
    return ImageDataset(name, split, torch.from_numpy(np.ascontiguousarray(images)), t_labels,
                        classes)


Loader = Callable[[str, "str | os.PathLike | None"], ImageDataset]
DATASETS: dict[str, Loader] = {}


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn
    return deco


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 limit: int | None = None) -> ImageDataset:
    """Load one split of a registered dataset into memory (fetching it into the cache if needed)."""
    _register_builtin()
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](split, data_dir).subset(limit)


def _register_builtin() -> None:
    # Imported lazily so `import gankit.data` stays light; each module registers itself.
    from gankit.data import mnist_datasets  # noqa: F401
