"""Global mean pooling: the pooled features of a convolutional D (its projection term, its
classifier head). A module rather than a `mean` call, so that `kernels: fast` can compute
it by another route (models/kernels.py)."""
from __future__ import annotations

import torch
from torch import nn


class GlobalMeanPool(nn.Module):
    """(B, C, H, W) -> (B, C): the mean over the H x W positions. No parameters."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(dim=(2, 3))
