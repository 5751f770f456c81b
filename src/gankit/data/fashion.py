"""Fashion-MNIST: Zalando's drop-in replacement for MNIST, in the same four IDX files.

Sources: a user folder, the cache, Debian's package `dataset-fashion-mnist` (which installs
the official `.gz` files in /usr/share/datasets/fashion-mnist; `apt-get install
dataset-fashion-mnist`), or the public mirrors. Splits as for MNIST: `train` the first 50k
images of the official training file, `val` its last 10k, `test` the official 10k,
`train-full` all 60k.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gankit.data.mnist import SPLITS as MNIST_SPLITS
from gankit.data.mnist import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, load_idx_split
from gankit.data.sources import FileSet, ensure_files

# sha256 of the uncompressed official files. Taken from the files of Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1 (the upstream repository's data/fashion/);
# their md5s are the ones upstream publishes for the uncompressed files (f4a8712d…, 9018921c…,
# 8181f547…, 15d48437…). Debian's .gz files differ byte-wise from the mirrors' .gz, so only the
# uncompressed bytes are pinned.
FASHION_SHA256 = {
    TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
]
DEBIAN_FOLDER = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
SPLITS = dict(MNIST_SPLITS)

FASHION = FileSet("fashion-mnist", dict(FASHION_SHA256), FASHION_MIRRORS,
                  extra_folders=[DEBIAN_FOLDER], subfolders=["FashionMNIST/raw", "fashion"],
                  hint="or install Debian's package: apt-get install dataset-fashion-mnist")


def load_fashion_arrays(split: str, data_dir: str | os.PathLike | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of one Fashion-MNIST split."""
    return load_idx_split(ensure_files(FASHION, data_dir), split, SPLITS)
