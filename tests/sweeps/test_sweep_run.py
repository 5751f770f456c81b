"""A real `gankit sweep --jobs 2`, killed half way, then run again: nothing finished is
redone, the unfinished runs resume or restart, and the table has every point."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.sweeps.conftest import TINY, gankit, write_yaml



def progress(run: Path) -> tuple[int, int]:
    """(epoch, batch) of a run's last checkpoint, (0, 0) without one."""
    ckpt = run / "checkpoints" / "last.pt"
    if not ckpt.exists():
        return 0, 0
    state = torch.load(ckpt, weights_only=True, map_location="cpu")
    return state["epoch"], state["batch"]


@pytest.mark.slow
def test_killed_sweep_continues_where_it_stopped(tmp_path: Path) -> None:
    sweep = write_yaml(tmp_path / "grid.yaml", {
        "preset": "mlp-cgan-m4",
        "set": {**TINY, "data.limit": 128, "checkpoint_every": 1, "sample_every": 10},
        "grid": {"model.nz": [8, 16], "epochs": [1, 30]}})
    out = tmp_path / "out"
    names = ["000-model.nz=8-epochs=1", "001-model.nz=8-epochs=30",
             "002-model.nz=16-epochs=1", "003-model.nz=16-epochs=30"]
    epochs = dict(zip(names, [1, 30, 1, 30]))
    # --no-estimate: no estimates, so the runs start in the sweep's order (with them the
    # longest would start first: runner.longest_first)
    p = gankit("sweep", str(sweep), "--out", str(out), "--jobs", "2", "--no-report",
               "--no-estimate", cwd=tmp_path)
    deadline = time.time() + 150
    # Kill when one run has finished and another is half way: the short run 000 ends while
    # its partner 001 (30 epochs) is training.
    # Judge by the checkpoints (what a restart sees), not by metrics.jsonl: an epoch's line
    # is written just before its checkpoint.
    while time.time() < deadline and p.poll() is None:
        saved = {n: progress(out / n)[0] for n in names}
        if any(saved[n] == epochs[n] for n in names) and \
                any(0 < saved[n] < epochs[n] for n in names):
            break
        time.sleep(0.05)
    assert p.poll() is None, "the sweep ended before it could be interrupted:\n" + \
        p.communicate()[1]
    os.killpg(p.pid, signal.SIGKILL)    # the sweep and its runs, without a chance to save
    p.wait()

    before = {n: progress(out / n) for n in names}
    finished = [n for n in names if before[n][0] == epochs[n]]
    unfinished = [n for n in names if n not in finished]
    assert finished and any(before[n][0] > 0 for n in unfinished), before
    stamps = {n: [(out / n / f).stat().st_mtime_ns for f in ("metrics.jsonl",
                                                              "checkpoints/last.pt")]
              for n in finished}

    # again, with the remaining runs all at once (--jobs may change between invocations)
    p = gankit("sweep", str(sweep), "--out", str(out), "--jobs", "3", "--no-report",
               cwd=tmp_path)
    stdout, stderr = p.communicate(timeout=180)
    assert p.returncode == 0, stderr
    assert f"{len(finished)} already finished" in stderr
    for n in unfinished:
        if before[n][0] > 0 or before[n][1] > 0:
            assert f"{n}: resuming at epoch {before[n][0] + 1}" in stderr
        else:
            assert f"{n}: starting" in stderr
    for n in finished:                   # not redone
        assert [(out / n / f).stat().st_mtime_ns
                for f in ("metrics.jsonl", "checkpoints/last.pt")] == stamps[n]
    for n in names:                      # every epoch exactly once, whatever happened
        recs = [json.loads(line) for line in (out / n / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in recs] == list(range(1, epochs[n] + 1)), n
        assert progress(out / n) == (epochs[n], 0)
    table = (out / "summary.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 00")]
    assert [r.split(" | ")[0][2:] for r in rows] == names
    assert all(" | done | " in r for r in rows)
    assert "| model.nz | epochs | status | epochs_done |" in table
    assert stdout.count("| 00") == 4     # the table is printed too
    assert {"summary.csv", "sweep.yaml", "state.json", "logs"} <= {p.name for p in out.iterdir()}
    # each run's log (no bar: it is a file) has a line for each epoch it trained
    log = (out / "logs" / f"{names[1]}.log").read_text()
    assert "epoch 30: d_loss" in log and "\r" not in log
