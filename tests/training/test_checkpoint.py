"""Checkpoints: atomic, weights_only, refused when corrupt or from another config."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.training.checkpoint import CheckpointError, load_checkpoint
from gankit.training.loop import Trainer, resume, train
from tests.conftest import tiny


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt") / "run"
    Trainer(tiny(epochs=1, data__limit=64), out, progress=False).run()
    return out


def test_checkpoint_holds_the_whole_state(run_dir: Path) -> None:
    state = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "rng", "epoch", "batch", "config",
                "schedule", "format"):
        assert key in state
    assert state["epoch"] == 1 and state["batch"] == 0
    assert state["config"]["preset"] == "seed000-m4"
    assert not list((run_dir / "checkpoints").glob(".*tmp"))  # nothing half-written left


def test_corrupt_checkpoint_is_refused(run_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    data = (run_dir / "checkpoints" / "last.pt").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or not a gankit checkpoint"):
        load_checkpoint(bad)
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)


def test_checkpoint_from_another_config_is_refused(run_dir: Path, tmp_path: Path) -> None:
    import shutil
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    cfg_text = (other / "config.yaml").read_text().replace("g_lr: 0.00015", "g_lr: 0.001")
    assert "g_lr: 0.001" in cfg_text
    (other / "config.yaml").write_text(cfg_text)
    with pytest.raises(CheckpointError, match=r"different config.*optim\.g_lr"):
        resume(other, progress=False)


def test_new_run_refuses_a_folder_with_a_run(run_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="already holds a run"):
        train(tiny(epochs=1), run_dir, progress=False)


def test_resume_can_extend_epochs(run_dir: Path, tmp_path: Path) -> None:
    import shutil
    r = tmp_path / "ext"
    shutil.copytree(run_dir, r)
    resume(r, epochs=2, progress=False)
    assert torch.load(r / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 2
