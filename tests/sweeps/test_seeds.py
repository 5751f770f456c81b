"""`gankit train --seeds` over several processes (sweeps/seeds.py): how many, which seeds go
together, and that a process's seeds train exactly as the same ensemble does in one process."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.cli.main import main
from gankit.errors import UserError
from gankit.sweeps import processes
from gankit.sweeps.seeds import processes_for, split
from gankit.training.checkpoint import load_checkpoint
from gankit.training.ensemble import members_of, train_seeds
from tests.conftest import tiny
from tests.sweeps.conftest import TINY


def test_one_process_per_core_on_a_cpu(monkeypatch) -> None:
    """The batched family: one process per core (at most one per seed); the others only when
    the seeds divide evenly (a process's runs go one after another)."""
    monkeypatch.setattr(processes, "cpu_count", lambda: 2)
    monkeypatch.setattr(processes, "available_memory", lambda: None)  # not this machine's
    mlp = tiny("mlp-cgan-m4")
    assert processes_for(mlp, 8) == 2 and processes_for(mlp, 3) == 2
    assert processes_for(mlp, 1) == 1
    conv = tiny("dcgan-r004")
    assert processes_for(conv, 4) == 2 and processes_for(conv, 3) == 1
    assert processes_for(tiny("mlp-cgan-m4", threads=1), 8) == 1  # the user chose threads
    assert processes_for(mlp, 2, jobs=3) == 2 and processes_for(conv, 3, jobs=2) == 2
    with pytest.raises(UserError, match="--jobs must be at least 1"):
        processes_for(mlp, 4, jobs=0)


def test_split_keeps_the_order_and_evens_the_sizes() -> None:
    assert split(list(range(8)), 2) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert split(list(range(5)), 3) == [[0, 1], [2, 3], [4]]


@pytest.mark.slow
def test_seeds_over_two_processes_train_as_each_ensemble_alone(tmp_path: Path) -> None:
    """--jobs 2: seeds 0-3 as two ensembles in two worker processes (one thread each); seeds 0
    and 1 end bit for bit where the same two-seed ensemble ends in this process on one
    thread, and every member is an ordinary finished run."""
    over = {**TINY, "epochs": 2}
    sets = [a for k, v in over.items() for a in ("--set", f"{k}={v}")]
    out = tmp_path / "split"
    assert main(["--quiet", "train", "mlp-cgan-m4", "--seeds", "0-3", "--jobs", "2", "--quiet",
                 "--out", str(out), *sets]) == 0
    assert [d.name for d in members_of(out)] == [f"seed00{i}" for i in range(4)]
    assert (out / "logs" / "seeds=2+3.log").is_file()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = train_seeds(tiny("mlp-cgan-m4", **over), [0, 1], tmp_path / "alone",
                            progress=False)
    finally:
        torch.set_num_threads(threads)
    for d in members_of(out):
        assert load_checkpoint(d / "checkpoints" / "last.pt")["epoch"] == 2
    for a, b in zip(alone, members_of(out)[:2]):
        sa, sb = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (a, b))
        for part in ("G", "D"):
            for key, value in sa[part].items():
                assert torch.equal(value, sb[part][key]), f"{b.name} {part}.{key}"


@pytest.mark.slow
def test_ctrl_c_stops_every_process_and_resume_continues_them(tmp_path: Path) -> None:
    """A Ctrl-C (SIGINT to the process group) while both processes train: exit 130, one line
    that says how to continue, a checkpoint in every run folder; `--resume OUT` finishes them."""
    import os
    import signal
    import time

    from tests.sweeps.conftest import gankit

    over = {**TINY, "epochs": 400, "checkpoint_every": 1}
    sets = [a for k, v in over.items() for a in ("--set", f"{k}={v}")]
    out = tmp_path / "ens"
    p = gankit("--quiet", "train", "mlp-cgan-m4", "--seeds", "0-3", "--jobs", "2", "--quiet",
               "--out", str(out), *sets, cwd=tmp_path)
    deadline = time.monotonic() + 180
    try:
        while not all((out / f"seed00{i}" / "metrics.jsonl").is_file() for i in range(4)):
            assert p.poll() is None, p.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the four runs did not start"
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert f"Continue with: gankit train --resume {out}" in err and "Traceback" not in err
    epochs = [load_checkpoint(d / "checkpoints" / "last.pt")["epoch"] for d in members_of(out)]
    assert len(epochs) == 4 and max(epochs) < 400
    assert main(["--quiet", "train", "--resume", str(out), "--jobs", "2", "--quiet",
                 "--set", f"epochs={max(epochs) + 1}"]) == 0
    for d in members_of(out):
        assert load_checkpoint(d / "checkpoints" / "last.pt")["epoch"] == max(epochs) + 1
