"""The comparison table and the plan of a rerun, from run folders written by hand."""
from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import torch

from gankit.config import ConfigError, dump
from gankit.sweeps import parse_sweep, plan, write_summary
from gankit.training.checkpoint import CheckpointError
from tests.sweeps.conftest import TINY


def fake_run(path: Path, cfg, records: list[dict], epoch: int | None = None, batch: int = 0
             ) -> None:
    """A run folder as `gankit train` leaves it (a checkpoint with only its position)."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(dump(cfg))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if epoch is not None:
        (path / "checkpoints").mkdir()
        torch.save({"format": 1, "epoch": epoch, "batch": batch}, path / "checkpoints" / "last.pt")


def test_seeds_give_mean_and_std_over_all_seeds_never_the_best(tmp_path: Path) -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "epochs": 2},
                     "grid": {"model.nz": [8, 16]}, "seeds": [0, 1, 2]}, name="seeded")
    fids = {0: [30.0, 34.0, 41.0], 1: [20.0, 21.0, 25.0]}
    for r in s.runs:
        fid = fids[r.point][r.seed]
        fake_run(tmp_path / r.name, r.cfg, [
            {"epoch": 1, "time_s": 1.0, "val/fid": 99.0},
            {"epoch": 2, "time_s": 2.0, "val/fid": fid, "val/kid": fid / 1000,
             "val/precision": 0.5, "val/g_loss": 1.0}], epoch=2)
    table = write_summary(s, tmp_path)
    mean, std = statistics.fmean(fids[0]), statistics.stdev(fids[0])
    assert f"{mean:.4g} ± {std:.4g}" in table
    lines = table.splitlines()
    assert lines[0].split(" | ")[1:5] == ["model.nz", "seeds", "status", "epochs_done"]
    assert "val/fid" in lines[0] and "val/kid" in lines[0] and "val/precision" in lines[0]
    assert "val/g_loss" not in lines[0]    # held-out diagnostics are not evaluation metrics
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert len(rows) == 2
    assert float(rows[0]["val/fid_mean"]) == pytest.approx(mean)
    assert float(rows[0]["val/fid_std"]) == pytest.approx(std)
    assert float(rows[1]["val/fid_mean"]) == pytest.approx(statistics.fmean(fids[1]))
    assert rows[0]["seeds"] == "3" and rows[0]["status"] == "done"
    assert float(rows[0]["train_s_mean"]) == pytest.approx(3.0)
    per_run = list(csv.DictReader((tmp_path / "runs.csv").open()))
    assert [float(r["val/fid"]) for r in per_run] == fids[0] + fids[1]
    assert "mean ± sample standard deviation" in (tmp_path / "summary.md").read_text()


def test_table_without_evaluation_has_no_metric_columns(tmp_path: Path) -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": TINY, "grid": {"model.nz": [8, 16]}})
    a, b = s.runs
    fake_run(tmp_path / a.name, a.cfg, [{"epoch": 1, "time_s": 0.5}], epoch=1)
    table = write_summary(s, tmp_path)
    assert "fid" not in table
    assert "| 000-model.nz=8 | 8 | done | 1 |" in table
    assert "| 001-model.nz=16 | 16 | pending | 0 |" in table


def test_plan_skips_finished_resumes_partial_restarts_empty_and_refuses_others(
        tmp_path: Path) -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "epochs": 3},
                     "grid": {"model.nz": [8, 16, 24, 32]}})
    done, partial, empty, new = s.runs
    fake_run(tmp_path / done.name, done.cfg, [{"epoch": e} for e in (1, 2, 3)], epoch=3)
    fake_run(tmp_path / partial.name, partial.cfg, [{"epoch": 1}], epoch=1, batch=2)
    fake_run(tmp_path / empty.name, empty.cfg, [])
    actions = [(p.name, p.action, p.epoch, p.batch) for p in plan(s, tmp_path)]
    assert actions == [(done.name, "done", 3, 0), (partial.name, "resume", 1, 2),
                       (empty.name, "start", 0, 0), (new.name, "start", 0, 0)]
    # more epochs than the finished run had: it resumes (epochs may change on resume)
    longer = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "epochs": 5},
                          "grid": {"model.nz": [8, 16, 24, 32]}})
    assert plan(longer, tmp_path)[0].action == "resume"
    # a folder holding a run of another config is an error before anything runs
    other = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "epochs": 3, "data.limit": 128},
                         "grid": {"model.nz": [8, 16, 24, 32]}})
    with pytest.raises(ConfigError, match="data.limit: checkpoint 64 vs config 128.*--set"):
        plan(other, tmp_path)


def test_plan_reads_the_previous_checkpoint_when_last_is_unreadable(tmp_path: Path) -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "epochs": 3},
                     "grid": {"model.nz": [8]}})
    (run,) = s.runs
    ck = tmp_path / run.name / "checkpoints"
    fake_run(tmp_path / run.name, run.cfg, [{"epoch": 1}, {"epoch": 2}], epoch=1)
    (ck / "last.pt").rename(ck / "last.prev.pt")
    (ck / "last.pt").write_bytes(b"cut short")
    assert [(p.action, p.epoch) for p in plan(s, tmp_path)] == [("resume", 1)]
    (ck / "last.prev.pt").unlink()
    with pytest.raises(CheckpointError, match="last.pt is unreadable.*delete"):
        plan(s, tmp_path)
