"""`log_every`: training statistics every N steps in steps.jsonl, beside the epoch records."""
from __future__ import annotations

import pytest

from gankit.training.loop import Trainer
from gankit.training.runs import RunPaths

from tests.conftest import tiny


def test_steps_jsonl_windows_average_to_the_epoch(tmp_path) -> None:
    # 256 images at batch 32: 8 steps per epoch, 2 epochs; a record every 4 steps
    out = Trainer(tiny("dcgan-r004", log_every=4, data__limit=256), tmp_path / "run",
                  progress=False).run()
    paths = RunPaths(out)
    steps, epochs = paths.read_steps(), paths.read_metrics()
    assert [(r["step"], r["epoch"]) for r in steps] == [(4, 1), (8, 1), (12, 2), (16, 2)]
    for e, rec in enumerate(epochs):
        window = steps[2 * e: 2 * e + 2]
        for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/grad_norm_d"):
            assert rec[key] == pytest.approx(sum(w[key] for w in window) / 2, rel=1e-5)
    assert steps[0]["train/d_loss"] != steps[1]["train/d_loss"]


def test_off_by_default(tmp_path) -> None:
    out = Trainer(tiny("dcgan-r004", data__limit=64), tmp_path / "run", progress=False).run()
    assert not RunPaths(out).steps.exists()


def test_losses_per_step_figure(tmp_path) -> None:
    from gankit.report.run_plots import write_run_plots
    out = Trainer(tiny("dcgan-r004", log_every=2, data__limit=64), tmp_path / "run",
                  progress=False).run()
    index = write_run_plots(out, n_samples=64)
    assert "losses_per_step" in [e["name"] for e in index["plots"]]
    assert (out / "plots" / "losses_per_step.png").stat().st_size > 1000
