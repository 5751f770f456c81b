"""One training process per run folder (training/run_lock.py): a second process asked to
train or resume a folder another process is training stops with one line and writes nothing;
the lock goes with the process that held it, however it ends."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gankit.cli.main import main
from gankit.training.loop import resume, train
from gankit.training.run_lock import RunBusy
from gankit.training.runs import RunPaths
from tests.conftest import tiny

HOLD = """
import sys, time
from gankit.training.run_lock import held
from gankit.training.runs import RunPaths
with held(RunPaths(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def holder(folder: Path) -> subprocess.Popen:
    """Another process holding `folder`'s lock (as a training process does)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def test_a_second_process_neither_starts_nor_resumes_a_busy_run(tmp_path: Path,
                                                                capsys) -> None:
    cfg = tiny(epochs=1, data__limit=64)
    fresh = tmp_path / "fresh"
    p = holder(fresh)
    try:
        with pytest.raises(RunBusy, match=r"fresh is being trained by another process "
                                          rf"\(pid {p.pid}, since "):
            train(cfg, fresh, progress=False)
        assert files(fresh) == {}                    # nothing written
    finally:
        p.kill()
        p.wait()
    train(cfg, fresh, progress=False)                # the lock went with its process
    assert RunPaths(fresh).has_checkpoint()

    before = files(fresh)
    p = holder(fresh)
    try:
        with pytest.raises(RunBusy):
            resume(fresh, epochs=2, progress=False)
        capsys.readouterr()
        assert main(["train", "--resume", str(fresh), "--set", "epochs=2", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is being trained by another process" in err[0], err
        assert files(fresh) == before                # the running process's files untouched
    finally:
        p.kill()
        p.wait()
    resume(fresh, epochs=2, progress=False)
    assert files(fresh) != before


def test_an_ensemble_takes_every_members_lock_first(tmp_path: Path) -> None:
    from gankit.training.ensemble import member_dir, train_seeds, why_not_batched
    cfg = tiny(epochs=1, data__limit=64)
    assert why_not_batched(cfg) is None              # the batched path, not one after another
    p = holder(member_dir(tmp_path, 1))
    try:
        with pytest.raises(RunBusy, match="seed001 is being trained"):
            train_seeds(cfg, [0, 1], tmp_path, progress=False)
        assert files(tmp_path) == {}                 # not even seed 0's folder written
    finally:
        p.kill()
        p.wait()
