"""Exponential moving average of the generator's weights (used for sampling when on)."""
from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay(decay: float, rampup: float, step: int) -> float:
    """The EMA decay after `step` training steps.

    Without warm-up (`rampup` 0) it is `decay`. With it, the half-life (in steps) is at most
    rampup * step (Karras et al. 2020, StyleGAN2-ADA's `ema_rampup`, there in images): the
    decay is min(decay, 0.5 ** (1 / (rampup * step))), so the weights of the first steps
    fade out fast instead of lingering for ~1/(1 - decay) steps.
    """
    if rampup <= 0:
        return decay
    half_life = rampup * step
    return 0.0 if half_life <= 0 else min(decay, 0.5 ** (1.0 / half_life))


class EMA:
    """Keeps `shadow`, a copy of `model` whose parameters track model's with `decay` (warmed
    up by `rampup`, see `ema_decay`).

    Buffers (BatchNorm statistics) are copied, not averaged, as in stylegan2-ada.
    """

    def __init__(self, model: nn.Module, decay: float, rampup: float = 0.0) -> None:
        self.decay = decay
        self.rampup = rampup
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)
        self._src = [p for p in model.parameters()]
        self._dst = [p for p in self.shadow.parameters()]
        self._src_buf = list(model.buffers())
        self._dst_buf = list(self.shadow.buffers())

    @torch.no_grad()
    def update(self, step: int = 0) -> None:
        """Move the shadow towards the model; `step` (steps done, this one included) sets the
        decay during the warm-up."""
        decay = ema_decay(self.decay, self.rampup, step)
        torch._foreach_lerp_(self._dst, self._src, 1.0 - decay)
        for d, s in zip(self._dst_buf, self._src_buf):
            d.copy_(s)
