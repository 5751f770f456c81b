"""Exponential moving average of the generator's weights (used for sampling when on)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps `shadow`, a copy of `model` whose parameters track model's with `decay`.

    Buffers (BatchNorm statistics) are copied, not averaged, as in stylegan2-ada.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)
        self._src = [p for p in model.parameters()]
        self._dst = [p for p in self.shadow.parameters()]
        self._src_buf = list(model.buffers())
        self._dst_buf = list(self.shadow.buffers())

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self._dst, self._src, 1.0 - self.decay)
        for d, s in zip(self._dst_buf, self._src_buf):
            d.copy_(s)
