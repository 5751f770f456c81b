"""The EMA of G and its warm-up (Karras et al. 2020's ema_rampup)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.training.ema import EMA, ema_decay


def test_decay_without_warm_up_is_constant():
    assert ema_decay(0.999, 0.0, 0) == 0.999
    assert ema_decay(0.999, 0.0, 10**6) == 0.999


def test_warm_up_caps_the_half_life_at_rampup_times_steps():
    assert ema_decay(0.999, 0.05, 0) == 0.0                          # copy the first step
    assert ema_decay(0.999, 0.05, 20) == pytest.approx(0.5)          # half-life 1 step
    assert ema_decay(0.999, 0.05, 200) == pytest.approx(0.5 ** 0.1)  # half-life 10 steps
    # 0.999 has a half-life of ln 0.5 / ln 0.999 = 692.8 steps: reached after 13,856 steps
    assert ema_decay(0.999, 0.05, 13_000) < 0.999
    assert ema_decay(0.999, 0.05, 14_000) == 0.999


def test_update_uses_the_warm_decay():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, 0.999, rampup=0.05)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(20)                       # decay 0.5: halfway
    assert ema.shadow.weight.item() == pytest.approx(0.5)
    ema.update(0)                        # decay 0: a copy
    assert ema.shadow.weight.item() == pytest.approx(1.0)
    plain = EMA(nn.Linear(1, 1, bias=False), 0.9)
    w0 = plain.shadow.weight.item()
    with torch.no_grad():
        next(iter(plain._src)).add_(1.0)
    plain.update(20)
    assert plain.shadow.weight.item() == pytest.approx(w0 + 0.1)
