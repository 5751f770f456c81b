"""Estimated training time of a run on this machine: a few timed batches times the batches of
its epochs (`gankit reproduce --list`; printed before a sweep or a reproduction starts).

The estimate covers training steps only: the per-epoch held-out diagnostics, FID
evaluations and grids come on top (seconds per epoch for the small models).
"""
from __future__ import annotations

import math
import tempfile
import time
from dataclasses import replace

import torch

from gankit.config import TrainConfig
from gankit.data.datasets import load_arrays, qualified_name
from gankit.training.loop import Trainer

WARMUP, TIMED = 2, 8   # batches run before timing, and timed (at most)
BUDGET_S = 5.0         # stop timing a slow model after this long (whole d_steps cycles)


def _key(cfg: TrainConfig) -> tuple:
    """What the cost of a step depends on."""
    return (repr(cfg.model), cfg.batch_size, cfg.d_steps, cfg.d_steps_per_batch, cfg.data.name,
            repr(cfg.loss), cfg.threads)


class SpeedMeter:
    """Seconds per training step of configs, measured once per distinct model and batch."""

    def __init__(self) -> None:
        self._step_s: dict[tuple, float] = {}
        self._sizes: dict[tuple, int] = {}

    def step_seconds(self, cfg: TrainConfig) -> float:
        key = _key(cfg)
        if key not in self._step_s:
            self._step_s[key] = _time_steps(cfg)
        return self._step_s[key]

    def images(self, cfg: TrainConfig) -> int:
        d = cfg.data
        key = (d.name, tuple(d.classes or ()), d.split, d.data_dir)
        if key not in self._sizes:
            self._sizes[key] = len(load_arrays(qualified_name(d.name, d.classes), d.split,
                                               d.data_dir).images)
        n = self._sizes[key]
        return min(n, d.limit) if d.limit else n

    def epoch_seconds(self, cfg: TrainConfig) -> float:
        return math.ceil(self.images(cfg) / cfg.batch_size) * self.step_seconds(cfg)

    def run_seconds(self, cfg: TrainConfig) -> float:
        return cfg.epochs * self.epoch_seconds(cfg)


def _time_steps(cfg: TrainConfig) -> float:
    """Seconds of one training step (a D step, with G's step every d_steps-th): the median
    of the timed steps, whose mean a busy machine's stalls would swamp; with d_steps > 1, the
    median over whole cycles of d_steps steps. The warm-up is whole cycles too, so that it
    takes a G step: a first G step builds its kernels (report 002's ResNet, 9 D steps per G
    step: 0.32 s a step estimated with the G step's first call timed, 0.20-0.23 trained)."""
    k = max(1, cfg.d_steps)
    warm = k * math.ceil(WARMUP / k)
    n = warm + max(TIMED, 2 * k)
    small = replace(cfg, device="cpu" if cfg.device == "auto" and not torch.cuda.is_available()
                    else cfg.device, val_diagnostics=cfg.batch_size,
                    data=replace(cfg.data, limit=cfg.batch_size * n))
    threads = torch.get_num_threads()
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(small, tmp, progress=False)
        try:
            for b, (x, y) in enumerate(trainer.loader.epoch(0)):
                t0 = time.perf_counter()
                trainer.train_step(x, y, do_g=(b + 1) % k == 0)
                times.append(time.perf_counter() - t0)
                done = len(times) - warm
                if done > 0 and done % k == 0 and sum(times[warm:]) > BUDGET_S:
                    break
        finally:
            torch.set_num_threads(threads)
    timed = times[warm:] or times
    cycles = sorted(sum(timed[i:i + k]) / k for i in range(0, len(timed) - k + 1, k))
    return cycles[len(cycles) // 2]


def fmt_duration(seconds: float) -> str:
    """'45 s', '12 min', '3.4 h', '2.1 days'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
