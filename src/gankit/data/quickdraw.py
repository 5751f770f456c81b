"""Quick, Draw! bitmaps: one `<category>.npy` file per category, shape (N, 784) uint8.

Categories are chosen in the dataset name: `quickdraw` is `quickdraw:sheep` (report 001's
hand-drawn sheep); `quickdraw:sheep,cat` loads two categories, labelled 0 and 1 in that
order. The name is the whole identity of the data, so it can be passed anywhere a dataset
name goes (a config's `data.name`, evaluation); `gankit.data.qualified_name("quickdraw",
["sheep", "cat"])` builds it from a config's `data.classes`.

Sources: a user folder holding the `.npy` files, the cache, or the public mirror (Google's
bucket; it publishes no checksums, so each download is checked for its structure: a NumPy
array (N, 784) uint8).

Splits, per category, in file order: `test` the last 10%, `val` the 10% before it, `train`
the rest, `train-full` train + val. With several categories the split is then shuffled with a
fixed seed (0), so that `data.limit` takes every category.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from gankit.data.errors import DataError
from gankit.data.sources import FileSet, ensure_files, log, plain_files

QUICKDRAW_MIRROR = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/"
DEFAULT_CLASSES = ("sheep",)
SPLIT_NAMES = ("train", "val", "test", "train-full")


def parse_classes(arg: str | None) -> tuple[str, ...]:
    """`"sheep,cat"` -> ("sheep", "cat"); None or "" -> the default ("sheep",)."""
    if not arg:
        return DEFAULT_CLASSES
    names = tuple(c.strip() for c in arg.split(","))
    for c in names:
        if not c or c.startswith(".") or "/" in c or "\\" in c:
            raise DataError(f"bad Quick, Draw! category {c!r} in {arg!r}: give category names "
                            "separated by commas, e.g. quickdraw:sheep,cat")
    if len(set(names)) != len(names):
        raise DataError(f"a Quick, Draw! category is repeated in {arg!r}")
    return names


def check_bitmaps(array: np.ndarray, name: str) -> np.ndarray:
    """(N, 784) or (N, 28, 28) uint8 -> (N, 28, 28); anything else is a DataError."""
    if array.dtype != np.uint8 or array.shape[1:] not in ((784,), (28, 28)):
        raise DataError(f"{name}: expected Quick, Draw! bitmaps, a uint8 array of shape (N, 784), "
                        f"got {array.dtype} {array.shape}; is it a numpy_bitmap file?")
    return array.reshape(-1, 28, 28)


def _load_npy(source: str | os.PathLike | io.BytesIO, name: str) -> np.ndarray:
    try:
        return np.load(source, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{name}: not a readable .npy file ({e}); it is truncated or corrupt: "
                        "delete it and fetch it again") from None


def fetch_npy(fs: FileSet, base: str, names: list[str]) -> dict[str, bytes]:
    """Mirror fetcher: `<base><category>.npy`, each checked to be bitmaps before it is kept."""
    blobs = {}
    for name in names:
        log(f"  {name} (about 100 MB per category)")
        blobs.update(plain_files(fs, base, [name]))
        check_bitmaps(_load_npy(io.BytesIO(blobs[name]), f"{name} from {base}"), name)
    return blobs


def quickdraw_files(classes: tuple[str, ...]) -> FileSet:
    """The file set of some categories; they share the cache folder `quickdraw/`."""
    return FileSet("quickdraw", {f"{c}.npy": None for c in classes}, [QUICKDRAW_MIRROR],
                   download=fetch_npy, dataset="quickdraw:" + ",".join(classes),
                   hint="Quick, Draw! files are <category>.npy from the dataset's numpy_bitmap "
                        "folder; category names as there, e.g. quickdraw:sheep,cat")


def split_rows(n: int, split: str) -> slice:
    """Rows of one split among a category's n drawings (see the module docstring)."""
    k = n // 10
    return {"train": slice(0, n - 2 * k), "val": slice(n - 2 * k, n - k),
            "test": slice(n - k, n), "train-full": slice(0, n - k)}[split]


def load_quickdraw_arrays(split: str, data_dir: str | os.PathLike | None = None,
                          arg: str | None = None
                          ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (N, 28, 28) uint8, labels (N,) int64 (category index) and category names."""
    if split not in SPLIT_NAMES:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_NAMES)}")
    classes = parse_classes(arg)
    files = ensure_files(quickdraw_files(classes), data_dir)
    images, labels = [], []
    for i, c in enumerate(classes):
        path: Path = files[f"{c}.npy"]
        bitmaps = check_bitmaps(_load_npy(path, str(path)), str(path))
        if len(bitmaps) < 10:
            raise DataError(f"{path}: only {len(bitmaps)} drawings; a category needs at least 10 "
                            "to have validation and test drawings")
        rows = bitmaps[split_rows(len(bitmaps), split)]
        images.append(rows)
        labels.append(np.full(len(rows), i, np.int64))
    if len(classes) == 1:
        return np.ascontiguousarray(images[0]), labels[0], classes
    order = np.random.default_rng(0).permutation(sum(len(x) for x in images))
    return np.concatenate(images)[order], np.concatenate(labels)[order], classes

