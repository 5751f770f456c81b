"""Minibatch standard deviation (Karras et al. 2018, ProGAN; kept in StyleGAN2's D).

D sees, beside each image's features, how much the features vary across a small group of
images of its batch: one extra channel holding the mean standard deviation of the group. A G
that narrows its samples makes that number small on its batches, so D can tell, and G is
pushed back towards the data's spread (issue 13: recall). In a D that sees real and
generated images in separate batches, each group is all real or all generated.
"""
from __future__ import annotations

import torch
from torch import nn


class MinibatchStd(nn.Module):
    """(N, C, H, W) -> (N, C + 1, H, W): the features, then the standard deviation of each
    feature over the image's group (`group` images, or the largest divisor of N below it),
    averaged over features and positions, as a constant plane. No parameters."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group, n) + 1) if n % d == 0)
        # image i is in group i mod N/g, as in StyleGAN2 (members spread over the batch)
        y = x.float().reshape(g, n // g, c, h, w)
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()      # (N/g, C, H, W)
        y = y.mean(dim=(1, 2, 3)).view(1, -1, 1, 1, 1)              # (1, N/g, 1, 1, 1)
        y = y.expand(g, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"group={self.group}"
