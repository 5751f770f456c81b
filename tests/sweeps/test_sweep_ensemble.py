"""Sweeps with `seeds:` train the seeds of a point as one ensemble process when the family
allows it; the run folders and the summary stay one per run."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from gankit.sweeps.runner import Planned, group_jobs, job_name, run_sweep
from gankit.sweeps.spec import parse_sweep
from gankit.training.checkpoint import load_checkpoint
from gankit.training.loop import train
from tests.sweeps.conftest import TINY


def planned(sweep) -> list[Planned]:
    return [Planned(r, Path(r.name), "start") for r in sweep.runs]


# step=autograd: the batched step that equals solo runs bit for bit; `auto` (the fused step
# on the MLP family) batches too (training/mlp_ensemble_step.py)
BATCHED = {**TINY, "step": "autograd"}


def test_seeds_of_an_mlp_point_form_one_job() -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": BATCHED, "grid": {"model.nz": [8, 16]},
                     "seeds": [0, 1, 2]})
    jobs = group_jobs(s, planned(s))
    assert [[p.name for p in j] for j in jobs] == [
        [f"000-model.nz=8-seed={i}" for i in range(3)],
        [f"001-model.nz=16-seed={i}" for i in range(3)]]
    assert job_name(jobs[0]) == "000-model.nz=8-seed=0+1+2"


def test_runs_at_different_points_or_unbatched_families_run_apart() -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": BATCHED, "points": [{}],
                     "seeds": [0, 1, 2]})
    ps = planned(s)
    ps[1] = Planned(ps[1].run, ps[1].path, "resume", epoch=1, batch=3)
    assert [len(j) for j in group_jobs(s, ps)] == [2, 1]
    fused = parse_sweep({"preset": "mlp-cgan-m4", "set": TINY, "points": [{}], "seeds": [0, 1]})
    assert [len(j) for j in group_jobs(fused, planned(fused))] == [2]     # batched, fused
    conv = parse_sweep({"preset": "dcgan-r004", "set": TINY, "points": [{}], "seeds": [0, 1]})
    assert [len(j) for j in group_jobs(conv, planned(conv))] == [1, 1]
    no_seeds = parse_sweep({"preset": "mlp-cgan-m4", "set": TINY, "grid": {"seed": [0, 1]}})
    assert [len(j) for j in group_jobs(no_seeds, planned(no_seeds))] == [1, 1]


def test_an_ensemble_splits_to_fill_the_job_slots() -> None:
    """--jobs 2 with one point of 5 seeds: two ensembles side by side (3 and 2 seeds), not one
    process and an idle slot; with two points of 2 seeds each, the slots are full already."""
    one = parse_sweep({"preset": "mlp-cgan-m4", "set": BATCHED, "points": [{}],
                       "seeds": [0, 1, 2, 3, 4]})
    jobs = group_jobs(one, planned(one), slots=2)
    assert [[p.run.seed for p in j] for j in jobs] == [[0, 1, 2], [3, 4]]
    assert [len(j) for j in group_jobs(one, planned(one), slots=8)] == [1] * 5
    two = parse_sweep({"preset": "mlp-cgan-m4", "set": BATCHED, "grid": {"model.nz": [8, 16]},
                       "seeds": [0, 1]})
    assert [len(j) for j in group_jobs(two, planned(two), slots=2)] == [2, 2]


@pytest.mark.slow
def test_sweep_with_seeds_trains_each_point_as_an_ensemble(tmp_path: Path) -> None:
    # step=autograd: the step the batched ensemble equals bit for bit (a solo MLP run's
    # `auto` is the fused step, equal to it only to rounding: tests/training/test_mlp_step.py)
    cfg_set = {**TINY, "epochs": 2, "eval.every": 0, "precision": "fp32", "step": "autograd"}
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": cfg_set, "grid": {"model.nz": [8, 16]},
                     "seeds": [0, 1]})
    lines: list[str] = []
    result = run_sweep(s, tmp_path / "out", echo=lines.append)
    assert not result.failed and set(result.exit_codes.values()) == {0}
    assert sum("(one ensemble of 2 seeds)" in ln for ln in lines) == 4
    names = [r.name for r in s.runs]
    with open(tmp_path / "out" / "runs.csv") as f:
        assert [row["run"] for row in csv.DictReader(f)] == names
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "000-model.nz=8" in summary and "001-model.nz=16" in summary
    # each member equals its seed trained alone (the workers run with the test's one thread)
    run = s.runs[3]
    alone = train(run.cfg, tmp_path / "alone", progress=False)
    a = load_checkpoint(tmp_path / "out" / run.name / "checkpoints/last.pt")
    b = load_checkpoint(alone / "checkpoints/last.pt")
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])
