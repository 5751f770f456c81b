"""Learning-rate schedules as pure functions of the epoch.

Because the rate depends only on (config, epoch), a resumed run needs no scheduler state:
the checkpoint's epoch determines it exactly.
"""
from __future__ import annotations

import math

from gankit.config import ConfigError, OptimConfig

SCHEDULES = ("constant", "piecewise", "linear", "cosine")  # the values of optim.schedule


def lr_at(base: float, milestones: list[list[float]], cfg: OptimConfig, epoch: int,
          epochs: int) -> float:
    """The learning rate for (0-based) `epoch` of `epochs`.

    piecewise: `milestones` [[e, lr], ...] set lr once e epochs are done: report 000's M4
    trains 1600 epochs at its first rates, then 100 at the next, so [1600, 5e-5] applies
    from 0-based epoch 1600 (the 1601st epoch) on.
    linear / cosine: from `base` down to `base * final_factor` over the run.
    """
    s = cfg.schedule
    if s == "constant":
        return base
    if s == "piecewise":
        lr = base
        for e, value in sorted(milestones):
            if epoch >= e:
                lr = value
        return lr
    t = epoch / max(1, epochs - 1)
    end = base * cfg.final_factor
    if s == "linear":
        return base + (end - base) * t
    if s == "cosine":
        return end + (base - end) * 0.5 * (1 + math.cos(math.pi * t))
    raise ConfigError(f"optim.schedule={s!r} is not valid; choose one of {', '.join(SCHEDULES)}")


def rates(cfg: OptimConfig, epoch: int, epochs: int) -> tuple[float, float]:
    """(G lr, D lr) for an epoch."""
    return (lr_at(cfg.g_lr, cfg.g_milestones, cfg, epoch, epochs),
            lr_at(cfg.d_lr, cfg.d_milestones, cfg, epoch, epochs))
