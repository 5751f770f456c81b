"""Checkpoints: atomic, weights_only, refused when corrupt or from another config."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from gankit.cli.main import main
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
    assert state["config"]["preset"] == "mlp-cgan-m4"
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
    # random bytes trip torch's unpickler on IndexError, KeyError, UnicodeDecodeError (seeds
    # found by trying 200): each a CheckpointError, not a traceback
    for seed in (2, 20, 195):
        bad.write_bytes(random.Random(seed).randbytes(1000))
        with pytest.raises(CheckpointError, match="corrupt or not a gankit checkpoint"):
            load_checkpoint(bad)


def test_a_missing_checkpoint_names_those_its_folder_holds(tmp_path: Path) -> None:
    """`--which best` where only last.pt was saved: the error says what is there."""
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(CheckpointError, match="has this run saved one yet"):
        load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"")
    (tmp_path / "checkpoints" / "last.prev.pt").write_bytes(b"")
    with pytest.raises(CheckpointError,
                       match=r"best.pt: its folder holds last.prev.pt, last.pt \(choose one"):
        load_checkpoint(tmp_path / "checkpoints" / "best.pt")


def test_a_corrupt_checkpoint_names_the_others_and_one_line_of_why(tmp_path: Path) -> None:
    """`gankit sample RUN` on a damaged best.pt: the fix names last.pt (--which), and torch's
    zip error is cut to its first sentence, not to 200 characters mid-word."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "best.pt").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(folder / "best.pt")
    assert str(e.value).endswith("(RuntimeError: PytorchStreamReader failed reading zip "
                                 "archive: failed finding central directory); start the run again")
    (folder / "last.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"its folder holds last.pt \(choose one with "
                                              r"--which; when resuming, --from\) or start"):
        load_checkpoint(folder / "best.pt")


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


# ---- keeping the previous last.pt, falling back, --from -------------------------------------

@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run (checkpoint every epoch): last.pt, last.prev.pt and best.pt."""
    out = tmp_path_factory.mktemp("ckpt2") / "run"
    Trainer(tiny(epochs=2, data__limit=64), out, progress=False).run()
    return out


def copy_run(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_saving_last_keeps_the_previous_one(two_epochs: Path) -> None:
    ck = two_epochs / "checkpoints"
    assert torch.load(ck / "last.pt", weights_only=True)["epoch"] == 2
    assert torch.load(ck / "last.prev.pt", weights_only=True)["epoch"] == 1
    state = torch.load(ck / "last.pt", weights_only=True)
    assert state["data"] == {"shape": [1, 28, 28], "classes": [str(i) for i in range(10)],
                             "num_classes": 10}


def test_truncated_last_resumes_from_the_previous_with_a_warning(
        two_epochs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    r = copy_run(two_epochs, tmp_path / "r")
    last = r / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 3])
    capsys.readouterr()
    resume(r, progress=False)
    err = capsys.readouterr().err
    assert "warning" in err and "last.pt is unreadable" in err and "last.prev.pt" in err
    # epoch 2 was trained again from the epoch-1 state: the same weights as the first time
    a = torch.load(two_epochs / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert b["epoch"] == 2
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k]), k
    lines = (r / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_resume_from_best(two_epochs: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture) -> None:
    r = copy_run(two_epochs, tmp_path / "r")
    (r / "checkpoints" / "last.pt").unlink()
    (r / "checkpoints" / "last.prev.pt").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(r), "--from", "best", "--set", "epochs=3",
                 "--quiet"]) == 0
    assert "from best.pt at epoch 3" in capsys.readouterr().err
    assert torch.load(r / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 3


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_resume_from_a_bad_file_is_one_clear_error(
        two_epochs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["train", "--resume", str(two_epochs), "--from", str(bad), "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(bad) in line and "corrupt" in line


def test_truncated_last_and_nothing_else_is_one_clear_error(
        two_epochs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    r = copy_run(two_epochs, tmp_path / "r")
    ck = r / "checkpoints"
    data = (ck / "last.pt").read_bytes()
    (ck / "last.pt").write_bytes(data[:1000])
    (ck / "last.prev.pt").unlink()
    (ck / "best.pt").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(r), "--quiet"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "last.pt is unreadable" in line and "nothing to resume from" in line
    assert "epoch_" not in line
