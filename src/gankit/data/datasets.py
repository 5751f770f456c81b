"""Datasets as one uint8 tensor each, with their shape and class names, behind one registry.

A dataset describes itself (channels, height, width, classes) so that models can size
themselves from it. Adding a dataset is one function plus one decorator:

    @register_arrays("name")
    def load(split, data_dir=None, arg=None) -> SplitArrays: ...

Array loaders use NumPy only, so that `gankit data fetch` and `data show` run without
importing PyTorch (about 2 s of start-up); `load_dataset` turns their arrays into tensors.
`register_dataset` still accepts a loader that returns an ImageDataset directly.

A dataset name may carry an argument after a colon, for datasets registered with
`takes_argument=True`: `quickdraw:sheep,cat` chooses Quick, Draw! categories.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from gankit.data import builtin
from gankit.data.arrays import SplitArrays
from gankit.data.errors import DataError

if TYPE_CHECKING:
    import torch

SPLITS = ("train", "val", "test", "train-full")


@dataclass(frozen=True)
class ImageDataset:
    """A split held in memory: images (N, C, H, W) uint8 and labels (N,) int64 or None."""
    name: str
    split: str
    images: "torch.Tensor"
    labels: "torch.Tensor | None"
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        import torch
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
    import torch
    if images.ndim == 3:
        images = images[:, None]
    t_labels = None if labels is None else torch.from_numpy(np.asarray(labels, np.int64))
    return ImageDataset(name, split, torch.from_numpy(np.ascontiguousarray(images)), t_labels,
                        classes)


Loader = Callable[[str, "str | os.PathLike | None"], ImageDataset]
ArrayLoader = Callable[..., SplitArrays]  # (split, data_dir, arg) -> SplitArrays
DATASETS: dict[str, Loader] = {}       # name -> (split, data_dir) -> ImageDataset
ARRAY_LOADERS: dict[str, ArrayLoader] = {}
_TAKES_ARGUMENT: set[str] = set()


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register a loader `(split, data_dir) -> ImageDataset` under `name`."""
    def deco(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn
    return deco


def register_arrays(name: str, takes_argument: bool = False
                    ) -> Callable[[ArrayLoader], ArrayLoader]:
    """Register a NumPy loader `(split, data_dir, arg) -> SplitArrays` under `name`; it is also
    entered in DATASETS. With `takes_argument`, `name:ARG` passes ARG (else None)."""
    def deco(fn: ArrayLoader) -> ArrayLoader:
        ARRAY_LOADERS[name] = fn
        if takes_argument:
            _TAKES_ARGUMENT.add(name)
        DATASETS[name] = lambda split, data_dir=None: load_dataset(name, split, data_dir)
        return fn
    return deco


def split_name(name: str) -> tuple[str, str | None]:
    """`"quickdraw:sheep,cat"` -> ("quickdraw", "sheep,cat"); `"mnist"` -> ("mnist", None)."""
    base, sep, arg = name.partition(":")
    if base not in DATASETS:
        raise DataError(f"unknown dataset {base!r}; available: {', '.join(sorted(DATASETS))}")
    if sep and base not in _TAKES_ARGUMENT:
        raise DataError(f"dataset {base!r} takes no argument after ':' (got {name!r})")
    return base, (arg if sep else None)


def qualified_name(name: str, classes: Sequence[str] | None = None) -> str:
    """The dataset name with a config's `data.classes` folded in: ("quickdraw", ["sheep",
    "cat"]) -> "quickdraw:sheep,cat". Without classes, `name` unchanged."""
    if not classes:
        return name
    base, arg = split_name(name)
    if base not in _TAKES_ARGUMENT:
        raise DataError(f"data.classes is set but dataset {base!r} has fixed classes; "
                        "leave data.classes empty or use quickdraw")
    if arg:
        raise DataError(f"give the classes either in the name {name!r} or in data.classes, "
                        "not both")
    return f"{base}:{','.join(classes)}"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def load_arrays(name: str, split: str = "train", data_dir: str | os.PathLike | None = None
                ) -> SplitArrays:
    """One split as NumPy arrays (no PyTorch import for the built-in datasets)."""
    base, arg = split_name(name)
    _check_split(split)
    if base in ARRAY_LOADERS:
        return ARRAY_LOADERS[base](split, data_dir, arg)
    ds = DATASETS[base](split, data_dir)
    return SplitArrays(ds.images.numpy(), None if ds.labels is None else ds.labels.numpy(),
                       ds.classes)


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 limit: int | None = None) -> ImageDataset:
    """Load one split of a registered dataset into memory (fetching it into the cache if needed).

    `name` is a key of DATASETS, optionally with an argument (`quickdraw:sheep,cat`); `split`
    one of train, val, test, train-full; `limit` keeps the first N images.
    """
    base, _ = split_name(name)
    _check_split(split)
    if base not in ARRAY_LOADERS:
        return DATASETS[base](split, data_dir).subset(limit)
    images, labels, classes = load_arrays(name, split, data_dir)
    return from_numpy(name, split, images, labels, classes).subset(limit)


for _name, (_load, _takes_argument) in builtin.BUILTIN.items():
    register_arrays(_name, _takes_argument)(_load)
