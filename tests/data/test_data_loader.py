"""BatchLoader: shapes, dtype, range, each index once per epoch, seeded order, mid-epoch
resume, and rotation. The tiny dataset's images encode their own index."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gankit.data.datasets import from_numpy
from gankit.data.loader import BatchLoader, rotate, stackable, stacked_epoch

N = 250


def indexed(n: int = N, labelled: bool = True, channels: int = 1):
    """Image i is filled with the value i (so 0 is black and 249 near white); label i % 10."""
    images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                             (n, channels, 8, 8)).copy()
    images[-1] = 255  # one pure-white image, to check the top of the range
    labels = np.arange(n) % 10 if labelled else None
    return from_numpy("indexed", "train", images, labels, tuple(map(str, range(10))))


def index_of(x: torch.Tensor, scale: str) -> torch.Tensor:
    lo = -1.0 if scale == "-1,1" else 0.0
    return ((x[:, 0, 0, 0] - lo) / (1.0 - lo) * 255).round().long()


@pytest.mark.parametrize("scale, lo, hi", [("-1,1", -1.0, 1.0), ("0,1", 0.0, 1.0)])
def test_shape_dtype_range(scale, lo, hi):
    ds = indexed(channels=3)
    loader = BatchLoader(ds, 64, seed=0, scale=scale)
    batches = list(loader.epoch(0))
    assert len(batches) == len(loader) == 4
    assert [len(x) for x, _ in batches] == [64, 64, 64, 58]
    x, y = batches[0]
    assert x.shape == (64, 3, 8, 8) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64
    allx = torch.cat([x for x, _ in batches])
    assert allx.min().item() == lo and allx.max().item() == hi  # 0 and 255 map onto the ends
    idx = index_of(torch.cat([x for x, _ in batches]), scale)
    idx[idx == 255] = N - 1
    assert torch.equal(torch.cat([y for _, y in batches]), idx % 10)  # labels follow images


def test_every_index_exactly_once_per_epoch():
    loader = BatchLoader(indexed(), 32, seed=3)
    orders = []
    for epoch in range(3):
        idx = torch.cat([index_of(x, "-1,1") for x, _ in loader.epoch(epoch)])
        idx[idx == 255] = N - 1
        assert sorted(idx.tolist()) == list(range(N))
        orders.append(idx.tolist())
    assert orders[0] != orders[1] != orders[2]  # reshuffled every epoch
    assert orders[0] != list(range(N))


def test_drop_last_and_unlabelled():
    loader = BatchLoader(indexed(labelled=False), 64, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(loader) == 3 and all(y is None for _, y in batches)


def test_seeded_determinism():
    a = [x for x, _ in BatchLoader(indexed(), 50, seed=7, rotation=20).epoch(4)]
    b = [x for x, _ in BatchLoader(indexed(), 50, seed=7, rotation=20).epoch(4)]
    c = [x for x, _ in BatchLoader(indexed(), 50, seed=8, rotation=20).epoch(4)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("rotation", [0.0, 15.0])
def test_mid_epoch_resume_gives_the_same_remaining_batches(rotation):
    loader = BatchLoader(indexed(), 40, seed=1, rotation=rotation)
    full = list(loader.epoch(2))
    resumed = list(BatchLoader(indexed(), 40, seed=1, rotation=rotation).epoch(2, start_batch=4))
    assert len(resumed) == len(full) - 4
    for (x1, y1), (x2, y2) in zip(full[4:], resumed):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def square_images(n: int = 16) -> np.ndarray:
    """White squares in the middle of black 16x16 images."""
    images = np.zeros((n, 1, 16, 16), np.uint8)
    images[:, :, 4:12, 4:12] = 255
    return images


@pytest.mark.parametrize("scale, lo, hi", [("-1,1", -1.0, 1.0), ("0,1", 0.0, 1.0)])
def test_rotation_keeps_range_shape_and_background(scale, lo, hi):
    ds = from_numpy("sq", "train", square_images(), None, ("x",))
    x, _ = next(iter(BatchLoader(ds, 16, seed=0, scale=scale, rotation=45).epoch(0)))
    assert x.shape == (16, 1, 16, 16) and x.dtype == torch.float32
    assert x.min().item() >= lo and x.max().item() <= hi
    assert torch.all(x[:, :, 0, :] == lo) and torch.all(x[:, :, :, 0] == lo)  # border: black
    assert torch.all(x[:, :, 7:9, 7:9] == hi)  # the middle of the square stays white
    plain, _ = next(iter(BatchLoader(ds, 16, seed=0, scale=scale).epoch(0)))
    assert not torch.equal(x, plain)  # and something did turn


def test_rotated_corners_take_the_background_value():
    # A white image turned by 45 degrees: its corners come from outside the image, so they
    # must be the background (black = -1), not the zero of grid_sample's padding.
    white = torch.ones(1, 1, 16, 16)
    out = rotate(white, torch.tensor([45.0]), fill=-1.0)
    assert out[0, 0, 0, 0].item() == pytest.approx(-1.0, abs=1e-5)
    assert out[0, 0, 8, 8].item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("h, w", [(28, 28), (16, 16), (6, 10)])
def test_rotate_samples_where_affine_grid_points(h: int, w: int):
    """To float rounding: bit for bit on the AMD EPYC; on the Intel Xeon affine_grid's own
    batched products (MKL for the larger grids) round otherwise, 12% of the pixels of a 28x28
    batch by up to 7.2e-6."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 2, h, w, generator=g)
    degrees = (torch.rand(64, generator=g) * 2 - 1) * 45
    theta = degrees * (math.pi / 180.0)
    cos, sin, zero = torch.cos(theta), torch.sin(theta), torch.zeros(64)
    mats = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(mats, list(x.shape), align_corners=False)
    ref = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False) - 1
    torch.testing.assert_close(rotate(x, degrees, fill=-1.0), ref, rtol=0, atol=2e-5)


def test_rotate_by_90_degrees_is_rot90():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    out = rotate(x, torch.tensor([90.0, -90.0]), fill=0.0)
    ref = torch.stack([torch.rot90(x[0], 1, (1, 2)), torch.rot90(x[1], -1, (1, 2))])
    if not torch.allclose(out, ref, atol=1e-4):  # the sign convention may be either way
        ref = torch.stack([torch.rot90(x[0], -1, (1, 2)), torch.rot90(x[1], 1, (1, 2))])
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale"):
        BatchLoader(indexed(), 8, scale="0,255")
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(indexed(), 0)


@pytest.mark.parametrize("labelled", [True, False])
def test_stacked_epoch_is_each_loaders_own_batches_stacked(labelled):
    """K loaders over one copy of the images (an ensemble's members, each its own seed): one
    gather per batch gives each loader's own batch, bit for bit, the smaller last batch and a
    mid-epoch start included."""
    ds = indexed(labelled=labelled)
    loaders = [BatchLoader(ds, batch_size=64, seed=s) for s in (3, 4, 5)]
    assert stackable(loaders)
    for start in (0, 2):
        stacked = list(stacked_epoch(loaders, epoch=1, start_batch=start))
        own = list(zip(*(ld.epoch(1, start) for ld in loaders)))
        assert len(stacked) == len(own) == len(loaders[0]) - start
        for (x, y), batches in zip(stacked, own):
            assert x.shape[0] == 3
            for k, (xk, yk) in enumerate(batches):
                assert torch.equal(x[k], xk)
                assert (y is None and yk is None) or torch.equal(y[k], yk)
    assert not stackable(loaders + [BatchLoader(ds, batch_size=64, rotation=10.0)])
    assert not stackable(loaders + [BatchLoader(indexed(), batch_size=64)])  # another copy


@pytest.mark.parametrize("scale", ["-1,1", "0,1"])
def test_batches_from_the_float_copy_are_the_converted_ones(monkeypatch, scale):
    """A small split's batches come from its float copy, made once; a split over the
    FLOAT_COPY_BYTES budget is converted batch by batch; the same values either way. Every
    uint8 value appears (random pixels), so the whole conversion table is compared."""
    from gankit.data import loader as loader_mod
    images = torch.randint(0, 256, (300, 1, 8, 8), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8).numpy()
    ds = from_numpy("random", "train", images, None, ())
    small = BatchLoader(ds, 50, seed=1, scale=scale)
    copied = list(small.epoch(0))
    assert list(small._copies) == [scale]
    monkeypatch.setattr(loader_mod, "FLOAT_COPY_BYTES", 300 * 64 * 4 - 1)
    big = BatchLoader(ds, 50, seed=1, scale=scale)
    converted = list(big.epoch(0))
    assert big._copies == {}
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(copied, converted, strict=True))


def test_a_shared_loader_reads_the_same_copy():
    a, b = BatchLoader(indexed(), 32, seed=0), BatchLoader(indexed(), 32, seed=1)
    b.share(a)
    next(iter(a.epoch(0)))
    assert b.images is a.images and b._copies is a._copies and len(a._copies) == 1
