"""Learning-rate schedules: report 000's M4 piecewise rates, linear and cosine decay."""
from __future__ import annotations

import pytest

from gankit.config import OptimConfig, resolve
from gankit.training.schedules import lr_at, rates


def test_m4_piecewise_rates() -> None:
    """Report 000's M4: 1600 epochs at the first rates, then 100, then 100 (0-based epochs)."""
    cfg = resolve("mlp-cgan-m4")
    assert rates(cfg.optim, 0, 1800) == (1.5e-4, 2.427e-4)
    assert rates(cfg.optim, 1599, 1800) == (1.5e-4, 2.427e-4)   # the 1600th epoch
    assert rates(cfg.optim, 1600, 1800) == (5e-5, 1.427e-4)
    assert rates(cfg.optim, 1699, 1800) == (5e-5, 1.427e-4)
    assert rates(cfg.optim, 1700, 1800) == (2e-5, 6.45e-5)
    assert rates(cfg.optim, 1799, 1800) == (2e-5, 6.45e-5)
    counts: dict[tuple[float, float], int] = {}
    for e in range(1800):
        counts[rates(cfg.optim, e, 1800)] = counts.get(rates(cfg.optim, e, 1800), 0) + 1
    assert list(counts.values()) == [1600, 100, 100]


def test_linear_and_cosine() -> None:
    o = OptimConfig(schedule="linear", final_factor=0.0)
    assert lr_at(1.0, [], o, 0, 11) == 1.0
    assert lr_at(1.0, [], o, 5, 11) == pytest.approx(0.5)
    assert lr_at(1.0, [], o, 10, 11) == pytest.approx(0.0)
    o = OptimConfig(schedule="cosine", final_factor=0.1)
    assert lr_at(1.0, [], o, 0, 11) == pytest.approx(1.0)
    assert lr_at(1.0, [], o, 5, 11) == pytest.approx(0.55)
    assert lr_at(1.0, [], o, 10, 11) == pytest.approx(0.1)
