"""DiffAugment (Zhao et al. 2020): differentiable augmentation of every image D sees.

The same policy transforms real and generated images, in D's step and in G's step (G's
gradient flows through it), so D cannot tell real from fake by the augmentation and G is not
pushed to draw augmented digits. Each image gets its own random parameters. The transforms
follow the authors' code (github.com/mit-han-lab/data-efficient-gans, DiffAugment_pytorch.py):
translation by up to 1/8 of the size with zero padding, cutout of a square half the size
(zero is mid-grey for images in [-1, 1], as there).

`train.augment` (config key `augment`) names the policy: `none`, or names of AUGMENTS joined
by commas, applied in that order.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from gankit.config import ConfigError

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def translate(x: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """x (B, C, H, W) moved by dy (B,) rows down and dx (B,) columns right, zeros shifted in:
    out[b, :, i, j] = x[b, :, i - dy[b], j - dx[b]]."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] - dy.to(x.device)[:, None]   # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] - dx.to(x.device)[:, None]   # (B, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    idx = torch.arange(b, device=x.device)[:, None, None]
    moved = x[idx, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return (moved * inside[..., None].to(x.dtype)).permute(0, 3, 1, 2)   # (B, H, W, C) -> NCHW


def cut_out(x: Tensor, cy: Tensor, cx: Tensor, size: tuple[int, int]) -> Tensor:
    """x with a size[0] x size[1] square set to zero in each image, its top-left corner at
    (cy - size[0] // 2, cx - size[1] // 2) (clipped at the borders)."""
    _, _, h, w = x.shape
    top = (cy.to(x.device) - size[0] // 2)[:, None]
    left = (cx.to(x.device) - size[1] // 2)[:, None]
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    in_rows = (r >= top) & (r < top + size[0])                    # (B, H)
    in_cols = (c >= left) & (c < left + size[1])                  # (B, W)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])           # (B, H, W)
    return x * keep[:, None].to(x.dtype)


def random_translation(x: Tensor, g: torch.Generator | None = None) -> Tensor:
    """Each image translated by up to int(size / 8 + 0.5) pixels on each axis."""
    b, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    dev = g.device if g is not None else x.device
    dy = torch.randint(-sy, sy + 1, (b,), generator=g, device=dev)
    dx = torch.randint(-sx, sx + 1, (b,), generator=g, device=dev)
    return translate(x, dy, dx)


def random_cutout(x: Tensor, g: torch.Generator | None = None) -> Tensor:
    """Each image with a zeroed square of half its size, centred anywhere in it."""
    b, _, h, w = x.shape
    size = (int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5))
    dev = g.device if g is not None else x.device
    cy = torch.randint(0, h + (1 - size[0] % 2), (b,), generator=g, device=dev)
    cx = torch.randint(0, w + (1 - size[1] % 2), (b,), generator=g, device=dev)
    return cut_out(x, cy, cx, size)


AUGMENTS: dict[str, Callable[[Tensor, torch.Generator | None], Tensor]] = {
    "translation": random_translation,
    "cutout": random_cutout,
}


def parse_policy(text: str) -> tuple[str, ...]:
    """The transforms of an `augment` setting ("none" -> ()), or a ConfigError naming the
    valid ones."""
    if text.strip() == "none":
        return ()
    names = tuple(n.strip() for n in text.split(","))
    for n in names:
        if n not in AUGMENTS:
            raise ConfigError(f"augment={text!r}: unknown transform {n!r}; give none or "
                              f"transforms joined by commas from: {', '.join(AUGMENTS)} "
                              "(e.g. translation,cutout)")
    if len(set(names)) != len(names):
        raise ConfigError(f"augment={text!r} names a transform twice; give each once")
    return names


def diff_augment(x: Tensor, policy: tuple[str, ...], g: torch.Generator | None = None) -> Tensor:
    """x with every transform of `policy` applied in order (x itself for an empty policy)."""
    for name in policy:
        x = AUGMENTS[name](x, g)
    return x
