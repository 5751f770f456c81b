"""metrics.jsonl has every figure of report 000's Table 6.1 for every epoch; files exist."""
from __future__ import annotations

import json
import math
from pathlib import Path

from gankit.training.loop import Trainer
from tests.conftest import tiny

FIGURES = ("g_loss", "d_loss", "d_real", "d_fake", "acc_real", "acc_fake", "grad_norm_g",
           "grad_norm_d")


def test_every_epoch_has_every_field(tmp_path: Path) -> None:
    cfg = tiny(epochs=3, data__limit=64, ema=0.9)
    Trainer(cfg, tmp_path, progress=False).run()
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for r in rows:
        for part in ("train", "val"):
            for f in FIGURES:
                v = r[f"{part}/{f}"]
                assert math.isfinite(v), (part, f, v)
        assert 0 <= r["train/d_real"] <= 1 and 0 <= r["val/acc_fake"] <= 1
        for k in ("step", "time_s", "lr_g", "lr_d", "d_steps"):
            assert k in r
    for e in (1, 2, 3):
        assert (tmp_path / "grids" / f"epoch_{e:04d}.png").exists()
    assert (tmp_path / "grids" / "progression.png").exists()
    assert (tmp_path / "config.yaml").exists()
    assert list((tmp_path / "tb").glob("events.out.tfevents*"))
    assert (tmp_path / "checkpoints" / "best.pt").exists()


def test_adaptive_d_steps_follow_d_accuracy(tmp_path: Path) -> None:
    cfg = tiny(epochs=3, data__limit=64, adaptive_d_steps=True, adaptive_threshold=1.01)
    Trainer(cfg, tmp_path, progress=False).run()
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # accuracy is always < 1.01, so D gets one more step each epoch
    assert [r["d_steps"] for r in rows] == [1, 2, 3]
