"""A NaN loss stops training, names epoch and step, and keeps the last good checkpoint."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.training.loop import NonFiniteLoss, Trainer
from tests.conftest import tiny


def test_planted_nan_stops_the_run(tmp_path: Path) -> None:
    t = Trainer(tiny(epochs=3, data__limit=64), tmp_path / "r", progress=False)

    def plant(module, inputs, output):  # from the 2nd epoch's 2nd batch on, D outputs NaN
        if t.epoch == 1 and t.batch == 1:
            return output * float("nan")
        return output

    t.D.register_forward_hook(plant)
    with pytest.raises(NonFiniteLoss, match=r"D loss became nan at epoch 2, batch 2 \(step 4\)"):
        t.run()
    assert t.paths.checkpoint("last").is_file()
    ckpt = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1  # the last good one
    assert all(torch.isfinite(v).all() for v in ckpt["G"].values())


@pytest.mark.parametrize("step", ["autograd", "fused"])
def test_a_nan_in_the_first_epoch_says_no_checkpoint_was_saved(tmp_path: Path,
                                                               step: str) -> None:
    """Before the first checkpoint, the message must not point at a file that is not there."""
    t = Trainer(tiny(epochs=2, data__limit=64, step=step, optim__d_lr=1e30, optim__g_lr=1e30),
                tmp_path / "r", progress=False)
    with pytest.raises(NonFiniteLoss, match="No checkpoint had been saved yet") as e:
        t.run()
    assert "epoch 1" in str(e.value) and not t.paths.checkpoint("last").exists()
