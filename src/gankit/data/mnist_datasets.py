"""Registry entries for MNIST and the bundled 8x8 `digits` set."""
from __future__ import annotations

import os

import numpy as np

from gankit.data.datasets import DIGIT_CLASSES, ImageDataset, from_numpy, register_dataset
from gankit.data.idx import DataError
from gankit.data.mnist import MNIST, load_idx_split
from gankit.data.sources import ensure_files


@register_dataset("mnist")
def load_mnist(split: str, data_dir: str | os.PathLike | None = None) -> ImageDataset:
    images, labels = load_idx_split(ensure_files(MNIST, data_dir), split)
    return from_numpy("mnist", split, images, labels, DIGIT_CLASSES)


DIGITS_SPLITS = {"train": slice(0, 1297), "val": slice(1297, 1547), "test": slice(1547, 1797),
                 "train-full": slice(0, 1547)}


@register_dataset("digits")
def load_digits(split: str, data_dir: str | os.PathLike | None = None) -> ImageDataset:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16), upscaled to 28x28.

    A tiny labelled set with no download, for fast tests. Each 8x8 image is resized to
    28x28 with bilinear interpolation and padded like MNIST digits (20x20 box in 28x28).
    """
    try:
        from sklearn.datasets import load_digits as sk_load
    except ImportError:
        raise DataError("the `digits` dataset needs scikit-learn: pip install 'gankit[dev]'") from None
    if split not in DIGITS_SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(DIGITS_SPLITS)}")
    import torch
    import torch.nn.functional as F
    d = sk_load()
    small = torch.from_numpy(d.images.astype(np.float32) / 16.0)[:, None]  # (N, 1, 8, 8)
    big = F.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)
    big = F.pad(big, (4, 4, 4, 4))
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    rows = DIGITS_SPLITS[split]
    return from_numpy("digits", split, images[rows], d.target[rows], DIGIT_CLASSES)
