"""Studies shared through a real PostgreSQL server (a throwaway cluster the session starts):
worker processes on one study, and a worker killed mid-trial (its trial failed by the
heartbeat and retried once, nothing else lost, a new worker finishing the study); and a worker
stopped by Ctrl-C (SQLite: the same code), whose trial is retried at once."""
from __future__ import annotations

import signal
import time
from pathlib import Path

import optuna
import pytest

from tests.sweeps.conftest import TINY, gankit, kill_when, write_yaml

SPACE = {"optim.g_lr": {"low": 1e-5, "high": 1e-3, "log": True},
         "model.nz": {"choices": [8, 16]}}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def tune_file(tmp_path: Path, epochs: int = 1) -> Path:
    return write_yaml(tmp_path / "t.yaml", {
        "preset": "mlp-cgan-m4", "pruner": "none", "space": SPACE,
        "set": {**TINY, "epochs": epochs, "eval.every": 1, "eval.n": 200}})


def tune_args(f: Path, url: str, trials: int, out: Path) -> tuple[str, ...]:
    # a heartbeat every second, stale after 3: the kill is noticed in seconds, not minutes
    return ("tune", str(f), "--trials", str(trials), "--storage", url, "--study", "s",
            "--out", str(out), "--heartbeat", "1", "--grace", "3")


def wait(procs: list, timeout: float = 240) -> list[str]:
    outs = [p.communicate(timeout=timeout) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return [out + err for out, err in outs]


@pytest.mark.slow
def test_two_workers_share_a_study_on_postgres(pg_url: str, tmp_path: Path) -> None:
    f = tune_file(tmp_path)
    # six trials: more work than the second worker's start-up, so both get trials
    procs = [gankit(*tune_args(f, pg_url, 6, tmp_path / "out"), cwd=tmp_path)
             for _ in range(2)]
    wait(procs)
    study = optuna.load_study(study_name="s", storage=pg_url.replace(
        "postgresql://", "postgresql+psycopg2://"))
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 6
    assert len({t.user_attrs["worker"] for t in finished}) == 2   # both workers ran trials
    assert all(t.value is not None and t.value > 0 for t in finished)
    for t in finished:
        assert (Path(t.user_attrs["run_dir"]) / "metrics.jsonl").is_file()
    # the only other trials a race may leave are surplus ones, never a failed real trial
    assert all(t.user_attrs.get("surplus") for t in trials if t.state not in FINISHED)


@pytest.mark.slow
def test_a_killed_worker_s_trial_is_retried_and_a_new_worker_finishes(
        pg_url: str, tmp_path: Path) -> None:
    """Worker A finishes trial 0 and is SIGKILLed in trial 1. A new worker B finds trial 1
    without a heartbeat after the grace period: FAILED, retried once with its parameters;
    trial 0 is kept, and B runs the study to its total of 3."""
    f = tune_file(tmp_path, epochs=3)      # trials long enough to be killed inside one
    args = tune_args(f, pg_url, 3, tmp_path / "out")
    storage = pg_url.replace("postgresql://", "postgresql+psycopg2://")

    db = optuna.storages.RDBStorage(storage)    # one engine: polling opens no new connections

    def in_second_trial() -> bool:
        try:
            trials = optuna.load_study(study_name="s", storage=db).get_trials()
        except KeyError:        # the study is not created yet
            return False
        # every parameter sampled: killed inside the trial's training, not between two of
        # its suggestions (a retry re-samples what the killed trial never drew)
        return len(trials) >= 2 and trials[1].state == optuna.trial.TrialState.RUNNING \
            and len(trials[1].params) == len(SPACE)
    kill_when(gankit(*args, cwd=tmp_path), in_second_trial, "worker A's second trial")
    b = gankit(*args, cwd=tmp_path)
    (log,) = wait([b])
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    states = [t.state.name for t in trials]
    assert trials[0].state == optuna.trial.TrialState.COMPLETE, states      # kept
    assert trials[1].state == optuna.trial.TrialState.FAIL, states          # killed
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1 and retries[0].state == optuna.trial.TrialState.COMPLETE
    assert retries[0].params == trials[1].params
    assert sum(t.state in FINISHED for t in trials) == 3
    assert [t.number for t in trials if t.state not in FINISHED] == [1]    # nothing else lost
    worker_b = {t.user_attrs["worker"] for t in trials[2:]}
    assert len(worker_b) == 1 and worker_b != {trials[0].user_attrs["worker"]}
    csv = (tmp_path / "out" / "s" / "trials.csv").read_text()
    assert f",{retries[0].user_attrs['run_dir']},1" in csv                  # retry_of column
    assert "best: trial" in log


@pytest.mark.slow
def test_a_worker_stopped_by_ctrl_c_retries_its_trial_at_once(tmp_path: Path) -> None:
    """SIGINT in a trial: the worker exits 130, the trial is FAILED and its retry is already
    enqueued (WAITING, same parameters), with no grace period. SQLite: the same code path."""
    f = tune_file(tmp_path, epochs=30)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    a = gankit("tune", str(f), "--trials", "2", "--storage", url, "--study", "s",
               "--out", str(tmp_path / "out"), cwd=tmp_path)

    db = optuna.storages.RDBStorage(url)

    def training() -> bool:
        try:
            trials = optuna.load_study(study_name="s", storage=db).get_trials()
        except KeyError:
            return False
        return bool(trials) and (Path(trials[0].user_attrs.get("run_dir", "/nowhere"))
                                 / "metrics.jsonl").exists()
    deadline = time.monotonic() + 120
    while not training():
        assert a.poll() is None and time.monotonic() < deadline, a.communicate()[1][-3000:]
        time.sleep(0.05)
    a.send_signal(signal.SIGINT)
    _, err = a.communicate(timeout=120)
    assert a.returncode == 130, err[-3000:]
    assert "retries the stopped one" in err
    trials = optuna.load_study(study_name="s", storage=url).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    assert trials[1].params == trials[0].params and trials[1].system_attrs["failed_trial"] == 0
