"""The built-in datasets: MNIST, Fashion-MNIST, CIFAR-10, Quick, Draw! and scikit-learn's 8x8
`digits`. Each loader returns NumPy arrays; `BUILTIN` lists them for the registry in
gankit.data.datasets (which imports this module, never the reverse)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from gankit.data import cifar, fashion, mnist, quickdraw
from gankit.data.arrays import DIGIT_CLASSES, SplitArrays
from gankit.data.errors import DataError
from gankit.data.sources import ensure_files

DataDir = Optional[Union[str, os.PathLike]]


def load_mnist(split: str, data_dir: DataDir = None, arg: None = None) -> SplitArrays:
    """MNIST: train 50k / val 10k (the last 10k of the official training file) / test 10k."""
    images, labels = mnist.load_idx_split(ensure_files(mnist.MNIST, data_dir), split, mnist.SPLITS)
    return SplitArrays(images[:, None], labels, DIGIT_CLASSES)


def load_fashion(split: str, data_dir: DataDir = None, arg: None = None) -> SplitArrays:
    """Fashion-MNIST, split like MNIST."""
    images, labels = fashion.load_fashion_arrays(split, data_dir)
    return SplitArrays(images[:, None], labels, fashion.FASHION_CLASSES)


def load_cifar10(split: str, data_dir: DataDir = None, arg: None = None) -> SplitArrays:
    """CIFAR-10: train batches 1-4 / val batch 5 / test; 3x32x32."""
    return SplitArrays(*cifar.load_cifar_arrays(split, data_dir))


def load_quickdraw(split: str, data_dir: DataDir = None, arg: str | None = None) -> SplitArrays:
    """Quick, Draw! bitmaps; `quickdraw:sheep,cat` chooses the categories (default sheep)."""
    images, labels, classes = quickdraw.load_quickdraw_arrays(split, data_dir, arg)
    return SplitArrays(images[:, None], labels, classes)


DIGITS_SPLITS = {"train": slice(0, 1297), "val": slice(1297, 1547), "test": slice(1547, 1797),
                 "train-full": slice(0, 1547)}


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (1797, 8, 8) float values 0..16 and (1797,) labels.

    Read straight from the data file that scikit-learn ships (importing scikit-learn takes
    over a second); through `sklearn.datasets.load_digits` if that file has moved.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the `digits` dataset needs scikit-learn: pip install 'gankit[dev]'")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        table = np.loadtxt(path, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as sk_load
    d = sk_load()
    return d.images, d.target.astype(np.int64)


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of 1-D bilinear resizing, as torch's interpolate(mode="bilinear",
    align_corners=False) computes them; resize an image X with M @ X @ M.T."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), i1), frac)
    return m


def load_digits(split: str, data_dir: DataDir = None, arg: None = None) -> SplitArrays:
    """scikit-learn's bundled 8x8 digits (1797 images, values 0..16), upscaled to 28x28.

    A tiny labelled set with no download, for fast tests. Each 8x8 image is resized to
    20x20 with bilinear interpolation and padded to 28x28, like MNIST's 20x20 box.
    Splits: train 1297, val 250, test 250, train-full 1547 (train + val), in sklearn's order.
    """
    small, target = _sklearn_digits()
    m = bilinear_matrix(8, 20)
    big = np.einsum("ij,njk,lk->nil", m, small / 16.0, m)              # (N, 20, 20)
    big = np.pad(big, ((0, 0), (4, 4), (4, 4)))                         # (N, 28, 28)
    images = np.rint(np.clip(big, 0, 1) * 255).astype(np.uint8)[:, None]
    rows = DIGITS_SPLITS[split]
    return SplitArrays(images[rows], target[rows], DIGIT_CLASSES)


# name -> (loader (split, data_dir, arg) -> SplitArrays, whether `name:ARG` takes an argument)
BUILTIN: dict[str, tuple[Callable[..., SplitArrays], bool]] = {
    "mnist": (load_mnist, False),
    "fashion-mnist": (load_fashion, False),
    "cifar10": (load_cifar10, False),
    "quickdraw": (load_quickdraw, True),
    "digits": (load_digits, False),
}
