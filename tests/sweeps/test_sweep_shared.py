"""`gankit sweep --storage URL`: a sweep's points as trials of a study, claimed by two worker
processes, each point trained once. SQLite here; PostgreSQL runs the same code (a storage
URL), checked once against the session's throwaway server."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from gankit.cli.main import main
from gankit.sweeps.shared import POINT
from tests.sweeps.conftest import TINY, gankit, kill_when, write_yaml

SEEDS = [0, 1, 2, 3]
# Eight short runs: more work than a second worker's start-up (importing PyTorch), so both
# workers get points (with four, a quiet machine sometimes let the first one take them all).
NAMES = [f"{point}-seed={seed}" for point in ("000-model.nz=8", "001-model.nz=16")
         for seed in SEEDS]


def sweep_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "grid.yaml", {
        "preset": "mlp-cgan-m4", "set": TINY, "grid": {"model.nz": [8, 16]}, "seeds": SEEDS})


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_two_workers_share_a_sweeps_points(db: str, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path / 'points.db'}" if db == "sqlite"
           else request.getfixturevalue("pg_url"))
    f, out = sweep_file(tmp_path), tmp_path / "out"
    args = ("sweep", str(f), "--out", str(out), "--storage", url, "--no-report",
            "--heartbeat", "1", "--grace", "3")
    procs = [gankit(*args, cwd=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    engine_url = url.replace("postgresql://", "postgresql+psycopg2://")
    trials = optuna.load_study(study_name="sweep-grid", storage=engine_url).get_trials()
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    # every point once, by the two workers together; nothing else but duplicates of a race
    assert sorted(t.user_attrs["point"] for t in done) == NAMES
    assert len({t.user_attrs["worker"] for t in done}) == 2
    assert all(t.user_attrs.get("duplicate") for t in trials if t not in done)
    # one copy of each point: only the creator enqueued. A trial without a point is a worker's
    # ask() just after the other worker claimed the last waiting one (both saw it waiting):
    # Optuna makes a new trial, marked a duplicate above (seen once, a busy machine)
    assert sorted(t.user_attrs["point"] for t in trials if POINT in t.user_attrs) == NAMES
    for name in NAMES:           # trained once: one record per epoch, not two
        lines = (out / name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(ln)["epoch"] for ln in lines] == [1]
    summary = (out / "summary.md").read_text()
    assert summary.count("| done |") == 2, summary          # both points, four seeds each
    state = json.loads((out / "state.json").read_text())["runs"]
    assert sorted(state) == NAMES and all(v["exit_code"] == 0 for v in state.values())


def test_storage_with_jobs_is_refused(tmp_path: Path, capsys) -> None:
    f = sweep_file(tmp_path)
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"), "--jobs", "2",
                 "--storage", f"sqlite:///{tmp_path}/x.db"]) == 2
    assert "start one per worker" in capsys.readouterr().err


def test_a_bad_storage_is_one_line_before_the_estimates(tmp_path: Path, capsys) -> None:
    """The estimates time steps of every model (seconds to minutes): a storage URL that cannot
    work is refused first."""
    f = sweep_file(tmp_path)
    assert main(["sweep", str(f), "--out", str(tmp_path / "o"),
                 "--storage", f"sqlite:///{tmp_path}/missing/x.db"]) == 2
    err = capsys.readouterr().err
    assert f"the folder {tmp_path}/missing does not exist" in err and "about" not in err


@pytest.mark.slow
def test_a_killed_workers_point_resumes_in_the_next_worker(tmp_path: Path) -> None:
    """Worker A is SIGKILLed inside a long point; worker B finds it without a heartbeat after
    the grace period, retries it and resumes it from A's last checkpoint (a shared folder)."""
    from tests.sweeps.test_sweep_run import progress
    f = write_yaml(tmp_path / "long.yaml", {
        "preset": "mlp-cgan-m4", "set": {**TINY, "data.limit": 128, "sample_every": 100},
        "points": [{"epochs": 40}]})
    out, url = tmp_path / "out", f"sqlite:///{tmp_path / 'points.db'}"
    args = ("sweep", str(f), "--out", str(out), "--storage", url, "--no-report",
            "--heartbeat", "1", "--grace", "3")
    run = out / "000-epochs=40"
    kill_when(gankit(*args, cwd=tmp_path), lambda: 2 <= progress(run)[0] < 40,
              "a checkpoint of epoch 2 or later")
    killed_at = progress(run)[0]
    assert killed_at < 40
    b = gankit(*args, cwd=tmp_path)
    _, err = b.communicate(timeout=240)
    assert b.returncode == 0, err[-3000:]
    assert f"resuming at epoch {killed_at + 1}" in err
    trials = optuna.load_study(study_name="sweep-long", storage=url).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[1].system_attrs["failed_trial"] == 0
    epochs = [json.loads(ln)["epoch"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 41))


def test_a_point_belongs_to_its_first_claimed_trial() -> None:
    """Two workers enqueueing at once: a point's lower-numbered copy can be claimed after the
    other one; the point stays with the copy claimed first (the later one is a duplicate)."""
    from gankit.sweeps import shared
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING,
                                                  user_attrs={shared.POINT: "x"}))
    assert shared._owner(study, "x") is None  # nobody has claimed it yet
    second = study.get_trials(deepcopy=False)[1]
    study._storage.set_trial_state_values(second._trial_id, optuna.trial.TrialState.RUNNING)
    assert study.ask().number == 0            # the other copy, claimed later
    assert shared._owner(study, "x") == 1


def test_only_the_studys_creator_enqueues_its_points(tmp_path: Path, monkeypatch) -> None:
    """The worker that creates the study enqueues and marks it; one that finds it adds only the
    points of a grown sweep file, and without the mark (its creator stopped while enqueueing)
    waits for it, says so, and enqueues what is missing."""
    from gankit.sweeps import shared
    from gankit.sweeps.spec import load_sweep
    from gankit.sweeps.study import join_study, open_storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, said = f"sqlite:///{tmp_path / 'points.db'}", []
    sweep = load_sweep(sweep_file(tmp_path))
    first, created = join_study(open_storage(url), "s")
    assert created and shared._enqueue(first, sweep, created, said.append) == 8
    second, created = join_study(open_storage(url), "s")
    assert not created and shared._enqueue(second, sweep, created, said.append) == 0
    grown = load_sweep(write_yaml(tmp_path / "grown.yaml", {
        "preset": "mlp-cgan-m4", "set": TINY, "grid": {"model.nz": [8, 16, 32]}, "seeds": [0]}))
    assert shared._enqueue(second, grown, False, said.append) == 1      # 002-model.nz=32-seed=0
    assert len(first.get_trials()) == 9 and said == []

    monkeypatch.setattr(shared, "ENQUEUE_WAIT_S", 0.5)
    bare, created = join_study(open_storage(url), "bare")
    assert created                       # made, then its worker stopped before enqueueing
    late, created = join_study(open_storage(url), "bare")
    assert not created and shared._enqueue(late, sweep, created, said.append) == 8
    assert len(said) == 1 and "not marked as enqueued within 0.5 s" in said[0]
    assert shared.ENQUEUED in bare.user_attrs
