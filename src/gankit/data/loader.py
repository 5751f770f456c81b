"""Shuffled batches from a split held in memory as one uint8 tensor.

No per-sample Python and no worker processes: a batch is one index_select (from the split's
float copy, or of uint8 images and one conversion) and (optionally) one batched rotation. The
order of an epoch depends only on (seed, epoch), so a run resumed in the middle of an epoch
sees exactly the batches it would have seen.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F

from gankit.data.datasets import ImageDataset
from gankit.data.image import check_scale, to_float

# A split whose float32 copy takes at most this many bytes (MNIST's 50k: 157 MB; CIFAR-10's
# 614 MB is over) is converted once, at its first batch, and each batch gathered from the copy:
# a batch of 64 MNIST images took 62 us through uint8 and the conversion, 12 from the copy
# (the same values: the conversion is per element): 2% of report 000's bf16 MLP step.
FLOAT_COPY_BYTES = 256 * 2**20


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator for one epoch's shuffling: depends on (seed, epoch) only."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return g


def shard(start: int, stop: int, rank: int, parts: int) -> tuple[int, int]:
    """Rank `rank`'s contiguous slice of positions [start, stop) split into `parts` slices
    whose sizes differ by at most one (the first ones are the longer)."""
    base, extra = divmod(stop - start, parts)
    lo = start + rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


def rotate(x: torch.Tensor, degrees: torch.Tensor, fill: float) -> torch.Tensor:
    """Rotate each image of a batch (B, C, H, W) by its own angle, filling with `fill`."""
    theta = degrees * (math.pi / 180.0)
    c = torch.cos(theta).to(x.dtype).view(-1, 1, 1)
    s = torch.sin(theta).to(x.dtype).view(-1, 1, 1)
    h, w = x.shape[-2:]
    # F.affine_grid's sampling points (pixel centres in [-1, 1], align_corners=False) turned by
    # each angle, written out with its operations in its order (its grid bit for bit on the AMD
    # EPYC, to float rounding where its own batched products round otherwise, e.g. MKL's on
    # the Intel Xeon; tests/data/test_data_loader.py): its batched 3x2 products took 600 of
    # the 940 us of rotating a batch of 128 MNIST images (2 threads)
    col = (torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device) * (w - 1) / w).view(1, 1, w)
    row = (torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device) * (h - 1) / h).view(1, h, 1)
    grid = torch.stack([col * c - row * s, col * s + row * c], dim=-1)
    # Rotate the offset from the background so that corners fill with the background value.
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) + fill


class BatchLoader:
    """Yields (images, labels) batches: images float in [-1, 1] or [0, 1], labels int64 or None.

    Every index is visited exactly once per epoch; the last batch may be smaller unless
    `drop_last`. `rotation` (degrees) applies a uniform random rotation in [-r, r] per image
    (report 004's augmentation). `part=(rank, parts)` (a distributed run) yields rank's
    contiguous slice of each batch (`shard`); a last batch with fewer images than parts is
    then dropped, so that no rank gets an empty one.
    """

    def __init__(self, dataset: ImageDataset, batch_size: int, seed: int = 0, scale: str = "-1,1",
                 rotation: float = 0.0, drop_last: bool = False,
                 device: str | torch.device = "cpu", part: tuple[int, int] = (0, 1)) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.scale = scale
        self.low, self.high = check_scale(scale)
        self.rotation = float(rotation)
        self.drop_last = drop_last
        self.rank, self.parts = part
        self.device = torch.device(device)
        self.images = dataset.images.to(self.device)
        self.labels = None if dataset.labels is None else dataset.labels.to(self.device)
        self._copies: dict[str, torch.Tensor] = {}  # scale -> float copy (`gather`)

    def __len__(self) -> int:
        full, rest = divmod(len(self.dataset), self.batch_size)
        return full + (1 if rest and not self.drop_last and rest >= self.parts else 0)

    def bounds(self, b: int) -> tuple[int, int]:
        """Positions [start, stop) of batch `b` in the epoch's permutation (all parts)."""
        return b * self.batch_size, min(len(self.dataset), (b + 1) * self.batch_size)

    def to_float(self, images_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> float32 in this loader's scale (see `to_float`)."""
        return to_float(images_u8, self.scale)

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        """The images at positions idx, float32 in this loader's scale: from the split's float
        copy where it takes at most FLOAT_COPY_BYTES (made on first use), else converted."""
        if self.images.numel() * 4 > FLOAT_COPY_BYTES:
            return self.to_float(self.images.index_select(0, idx))
        copy = self._copies.get(self.scale)
        if copy is None:
            copy = self._copies[self.scale] = self.to_float(self.images)
        return copy.index_select(0, idx)

    def share(self, other: BatchLoader) -> None:
        """Read other's dataset, images, labels and float copy (the same split, loaded by
        each of an ensemble's members): one copy of each in memory."""
        self.dataset, self.images, self.labels = other.dataset, other.images, other.labels
        self._copies = other._copies

    def _order(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One epoch's permutation of the dataset and, with `rotation`, each image's angle."""
        n = len(self.dataset)
        g = epoch_generator(self.seed, epoch)
        perm = torch.randperm(n, generator=g).to(self.device)
        angles = None
        if self.rotation:
            angles = (torch.rand(n, generator=g) * 2 - 1).mul_(self.rotation).to(self.device)
        return perm, angles

    def _slices(self, start_batch: int) -> Iterator[tuple[int, int]]:
        """Positions [lo, hi) in the epoch's permutation of each batch from `start_batch` on."""
        for b in range(start_batch, len(self)):
            yield shard(*self.bounds(b), self.rank, self.parts)

    def epoch(self, epoch: int, start_batch: int = 0
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The batches of one epoch, from batch `start_batch` on (for mid-epoch resume)."""
        perm, angles = self._order(epoch)
        fill = self.low  # the value of a black pixel after scaling
        for lo, hi in self._slices(start_batch):
            idx = perm[lo:hi]
            x = self.gather(idx)
            if angles is not None:
                x = rotate(x, angles[lo:hi], fill)
                x.clamp_(self.low, self.high)  # bilinear weights can overshoot by an ulp
            y = None if self.labels is None else self.labels.index_select(0, idx)
            yield x, y

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        return self.epoch(0)


def stackable(loaders: list[BatchLoader]) -> bool:
    """Whether `stacked_epoch` can gather these loaders' batches at once: the same images
    and labels in memory, scale, batch size and sharding, and no rotation."""
    a = loaders[0]
    return all(not b.rotation and b.images is a.images and b.labels is a.labels
               and b.scale == a.scale and len(b) == len(a) and b.bounds(len(a) - 1)
               == a.bounds(len(a) - 1) and (b.rank, b.parts) == (a.rank, a.parts)
               for b in loaders)


def stacked_epoch(loaders: list[BatchLoader], epoch: int, start_batch: int = 0
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The batches of K `stackable` loaders (each its own order: its seed), batch by batch,
    as one stack (K, B, C, H, W) and labels (K, B): one gather for all K,
    where each loader's `epoch` makes K of each. The same values (the conversion is per
    element; tests/data/test_data_loader.py)."""
    orders = [ld._order(epoch)[0] for ld in loaders]
    first = loaders[0]
    for lo, hi in first._slices(start_batch):
        idx = torch.cat([perm[lo:hi] for perm in orders])
        x = first.gather(idx)
        y = None if first.labels is None else first.labels.index_select(0, idx)
        k = len(loaders)
        yield x.view(k, hi - lo, *x.shape[1:]), None if y is None else y.view(k, hi - lo)
