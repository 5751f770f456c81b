"""training/logging.py's heartbeat: where a run is within its epoch, in heartbeat.json and as
a line in a log without a progress bar."""
from __future__ import annotations

import json

from gankit.training import logging as run_logging
from gankit.training.logging import Logger
from gankit.training.loop import train
from gankit.training.runs import RunPaths
from tests.conftest import tiny


def test_the_heartbeat_paces_each_epoch_from_its_own_start(tmp_path, monkeypatch,
                                                            capsys) -> None:
    """The first step of an epoch only sets the mark; later ones (HEARTBEAT_S apart) write
    the batch and the seconds a step since the mark, and print a line where no bar is drawn;
    a new epoch starts a new mark, but not a new wait: epochs shorter than HEARTBEAT_S get
    theirs at the first step after it is due."""
    monkeypatch.setattr(run_logging, "HEARTBEAT_S", 0.0)
    clock = iter([100.0, 104.0, 110.0, 200.0])
    monkeypatch.setattr(run_logging.time, "monotonic", lambda: next(clock))
    paths = RunPaths(tmp_path)
    log = Logger(paths, 0, progress="lines")
    log.heartbeat(1, 5, 10, 40)
    assert not paths.heartbeat.exists()
    log.heartbeat(1, 5, 12, 40)
    beat = json.loads(paths.heartbeat.read_text())
    assert (beat["epoch"], beat["epochs"], beat["batch"], beat["batches"]) == (1, 5, 12, 40)
    assert beat["step_s"] == 2.0  # 4 s for 2 steps
    log.heartbeat(1, 5, 15, 40)
    assert json.loads(paths.heartbeat.read_text())["step_s"] == 2.0  # 10 s for 5 steps
    log.heartbeat(2, 5, 1, 40)   # a new epoch: a new mark, nothing written
    assert json.loads(paths.heartbeat.read_text())["epoch"] == 1
    err = capsys.readouterr().err
    assert "epoch 1/5: batch 12/40, 2 s a step, the epoch's steps done in 0.9 min" in err
    log.close()
    # every 30 s from the first step, across epochs of 20 s
    monkeypatch.setattr(run_logging, "HEARTBEAT_S", 30.0)
    times = iter([0.0, 10.0, 20.0, 25.0, 31.0])
    monkeypatch.setattr(run_logging.time, "monotonic", lambda: next(times))
    paths.heartbeat.unlink()
    log = Logger(paths, 0, progress=False)
    for epoch, batch in ((1, 0), (1, 1), (2, 0), (2, 1), (2, 2)):
        log.heartbeat(epoch, 5, batch, 2)
        assert paths.heartbeat.exists() == ((epoch, batch) >= (2, 2))
    assert json.loads(paths.heartbeat.read_text())["step_s"] == 11.0 / 2  # epoch 2 from 20 s
    log.close()


def test_a_run_writes_its_heartbeat_and_a_log_gets_lines(tmp_path, monkeypatch, capsys) -> None:
    """A real run with progress="lines" (a parallel sweep's worker, whose output goes to a
    log file): heartbeat.json at its last step and a line for each epoch and heartbeat;
    quiet (progress=False, `gankit train --quiet`): the heartbeat file but no line."""
    monkeypatch.setattr(run_logging, "HEARTBEAT_S", 0.0)
    out = train(tiny(epochs=2, data__limit=128), tmp_path / "run", progress="lines")
    beat = json.loads(RunPaths(out).heartbeat.read_text())
    assert (beat["epoch"], beat["epochs"]) == (2, 2) and beat["batch"] == beat["batches"] > 1
    err = capsys.readouterr().err
    assert "epoch 1: d_loss" in err and "epoch 2: d_loss" in err
    assert f"epoch 2/2: batch {beat['batches']}/{beat['batches']}" in err
    out = train(tiny(epochs=1, data__limit=128), tmp_path / "quiet", progress=False)
    assert RunPaths(out).heartbeat.is_file()
    assert "epoch" not in capsys.readouterr().err
