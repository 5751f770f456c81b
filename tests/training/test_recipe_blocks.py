"""The recipe blocks in the training loop: DiffAugment on every image D sees, R1 on its due
steps, the EMA warm-up, and a BN-free hinge + SN + projection discriminator together."""
from __future__ import annotations

import json
import math

import pytest

from gankit.training.ema import ema_decay
from gankit.training.loop import Trainer
from tests.conftest import tiny


class CountR1:
    """The run's loss, counting the R1 penalties added."""

    def __init__(self, loss):
        self.inner, self.calls = loss, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def r1(self, *args):
        self.calls += 1
        return self.inner.r1(*args)


@pytest.mark.slow
def test_a_run_with_every_block_trains_and_uses_each(tmp_path):
    cfg = tiny("default", epochs=1, eval__every=0, model__ngf=8, model__ndf=8,
               loss__name="hinge", model__spectral_norm=True, model__d_cond="projection",
               model__d_norm="none", loss__r1_gamma=1.0, loss__r1_every=2,
               augment="translation,cutout", ema_rampup=0.05, optim__g_lr=2e-4,
               optim__d_lr=4e-4)
    t = Trainer(cfg, tmp_path / "run", progress=False)
    assert t.joint_d                       # no BN in D: real and fake in one forward
    assert t.opt_d.param_groups[0]["lr"] == 2 * t.opt_g.param_groups[0]["lr"]  # TTUR
    seen = []
    augment = t.augment
    t.augment = lambda x: seen.append(x.shape[0]) or augment(x)
    t.loss = CountR1(t.loss)
    t.run()
    steps = 256 // 32
    assert t.loss.calls == steps // 2      # D steps 0, 2, 4, 6
    assert len(seen) == 3 * steps          # real and fake in D's step, fake in G's
    assert t.ema.rampup == 0.05 and ema_decay(0.999, 0.05, steps) < 0.5
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert all(math.isfinite(record[k]) for k in ("train/d_loss", "train/g_loss"))
