"""A dataset split as NumPy arrays: what every dataset loader returns (no PyTorch needed)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

DIGIT_CLASSES = tuple(str(i) for i in range(10))


class SplitArrays(NamedTuple):
    """One split as NumPy arrays: images (N, C, H, W) uint8, labels (N,) int64 or None."""
    images: np.ndarray
    labels: np.ndarray | None
    classes: tuple[str, ...]
