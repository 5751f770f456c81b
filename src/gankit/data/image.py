"""Image conversion, both ways: uint8 pixels (how datasets and PNGs hold images) and float
tensors in a model's range (`data.scale`: "-1,1" for tanh generators, or "0,1")."""
from __future__ import annotations

import torch

# scale -> (low, high): uint8 0..255 maps linearly onto [low, high] (report 000: 2 * x / 255 - 1).
SCALES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}


def check_scale(scale: str) -> tuple[float, float]:
    """(low, high) of a scale name, or a ValueError naming the valid ones."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    return SCALES[scale]


def to_float(images_u8: torch.Tensor, scale: str = "-1,1") -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 in the range `scale` names; 0 and 255 map exactly onto its
    ends (the inverse of `to_uint8`)."""
    low, high = check_scale(scale)
    return images_u8.float().div_(255.0).mul_(high - low).add_(low)


def to_uint8(images: torch.Tensor, scale: str = "-1,1") -> torch.Tensor:
    """Float images in the range `scale` names -> uint8 (N, C, H, W) on the CPU, rounded and
    clamped (generators may overshoot their range by rounding)."""
    low, high = check_scale(scale)
    x = images.detach().float().cpu()
    return x.sub_(low).mul_(255.0 / (high - low)).round_().clamp_(0, 255).to(torch.uint8)
