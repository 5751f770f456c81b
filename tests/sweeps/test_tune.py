"""`gankit tune`: the search space, bad input, pruning by validation FID, and one study
shared by two processes through SQLite."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import optuna
import pytest

from gankit.cli.main import main
from gankit.config import ConfigError
from gankit.sweeps.study import open_storage, open_study
from gankit.sweeps.tune import tune
from gankit.sweeps.tune_file import load_tune, parse_tune
from tests.sweeps.conftest import TINY, gankit, write_yaml

BASE = {"preset": "mlp-cgan-m4", "set": {**TINY, "eval.every": 1, "eval.n": 200}}
LR = {"optim.g_lr": {"low": 1e-5, "high": 1e-3, "log": True}}


def test_space_kinds_follow_the_config_types() -> None:
    spec = parse_tune({**BASE, "space": {**LR, "model.nz": {"low": 8, "high": 32, "step": 8},
                                         "optim.d_betas": {"choices": [[0.5, 0.999],
                                                                       [0.0, 0.9]]}}})
    kinds = {p.key: p.kind for p in spec.space}
    assert kinds == {"optim.g_lr": "float", "model.nz": "int", "optim.d_betas": "choice"}
    trial = optuna.create_study().ask()
    params = {p.key: p.suggest(trial) for p in spec.space}
    cfg = spec.config(params)
    assert 1e-5 <= cfg.optim.g_lr <= 1e-3 and cfg.model.nz in (8, 16, 24, 32)
    assert cfg.optim.d_betas in ([0.5, 0.999], [0.0, 0.9])
    assert "--set optim.d_betas=" in spec.command(params)


def test_a_preset_name_tunes_both_learning_rates_with_eval_on() -> None:
    spec = load_tune("dcgan-r004", ["epochs=2"])
    assert [p.key for p in spec.space] == ["optim.g_lr", "optim.d_lr"]
    assert spec.config({}).eval.every == 1 and spec.config({}).epochs == 2


@pytest.mark.parametrize("data,match", [
    ({"space": {}}, "space: is empty"),
    ({"space": {"optim.glr": {"low": 1, "high": 2}}}, "did you mean optim.g_lr"),
    ({"space": {"optim.g_lr": {"low": 1e-3, "high": 1e-5}}}, "must be below high"),
    ({"space": {"optim.g_lr": {"low": 0, "high": 1, "log": True}}}, "needs low > 0"),
    ({"space": {"model.nz": {"low": 8.5, "high": 32}}}, "must be integers"),
    ({"space": {"loss.name": {"low": 1, "high": 2}}}, "search it with choices"),
    ({"space": {"loss.name": {"choices": ["hinge", "nope"]}}}, "loss.name"),
    ({"space": {"model.nz": {"choices": ["x"]}}}, "expected an integer"),
    ({"space": {"optim.g_lr": {"low": 1e-5, "hi": 1}}}, "unknown field"),
    ({"space": LR, "set": {**TINY, "eval.every": 0}}, "needs eval.every > 0"),
    ({"space": LR, "set": {**TINY, "eval.every": 1, "optim.g_lr": 1e-4}}, "searched .* also fixed"),
    ({"space": LR, "pruner": "sometimes"}, "pruner:"),
    ({"space": LR, "spaces": {}}, "did you mean space"),
])
def test_bad_tune_files_fail_before_any_trial(data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_tune({**BASE, **data})


@pytest.mark.slow
def test_bad_storage_is_one_line_before_any_trial(tmp_path: Path, capsys,
                                                 monkeypatch) -> None:
    """A malformed URL, a missing driver, an unreachable server, a missing folder: one line
    each (no traceback), the password hidden, nothing written."""
    f = write_yaml(tmp_path / "t.yaml", {**BASE, "space": LR})
    out = tmp_path / "out"
    monkeypatch.setitem(sys.modules, "psycopg2", None)     # as if it were not installed
    for url, says in [
            ("nosuchdb://x", "nosuchdb://x is not a database URL"),
            ("not a url", "is not a database URL"),
            ("postgresql://me:secret@localhost:1/db", "pip install 'gankit[postgres]'"),
            ("postgresql+nosuchdriver://u@h/db", "is not a database URL"),
            (f"sqlite:///{tmp_path}/missing/optuna.db", "does not exist")]:
        assert main(["tune", str(f), "--trials", "1", "--storage", url, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert says in err and "secret" not in err and "Traceback" not in err, err
        lines = [ln for ln in err.splitlines() if ln and "warning:" not in ln]
        assert len(lines) == 1 and lines[0].startswith("gankit: "), err
    monkeypatch.delitem(sys.modules, "psycopg2")
    pytest.importorskip("psycopg2")
    # nothing listens on port 1: the server is unreachable
    assert main(["tune", str(f), "--trials", "1", "--out", str(out),
                 "--storage", "postgresql://me:secret@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert "cannot open the Optuna storage postgresql://me:***@127.0.0.1:1/db" in err, err
    assert "secret" not in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("says, retried", [
    ('type "studydirection" already exists', True),     # PostgreSQL's CREATE TYPE race
    ('permission denied for schema public', False)])
def test_a_schema_race_is_retried_other_errors_are_not(tmp_path: Path, monkeypatch,
                                                       says: str, retried: bool) -> None:
    """Workers creating one new PostgreSQL database at once: the losers of the race to create
    Optuna's enum types get ProgrammingError "... already exists" (a CI failure of 2026-12-04)
    and must open the storage on a retry; any other ProgrammingError is one line at once."""
    import sqlalchemy.exc

    from gankit.sweeps import study
    calls = []
    real = optuna.storages.RDBStorage

    def racing(url: str, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise sqlalchemy.exc.ProgrammingError("CREATE TYPE", {}, Exception(says))
        return real(url, **kwargs)
    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(study.time, "sleep", lambda s: None)
    url = f"sqlite:///{tmp_path}/optuna.db"
    if retried:
        assert study.open_storage(url) is not None and len(calls) == 2
    else:
        with pytest.raises(ConfigError, match="permission denied"):
            study.open_storage(url)
        assert len(calls) == 1


def test_the_cli_defaults_are_the_librarys() -> None:
    from gankit.cli import tune_cmd
    from gankit.sweeps import study
    assert (tune_cmd.HEARTBEAT_S, tune_cmd.GRACE_S) == (study.HEARTBEAT_S, study.GRACE_S)


FIDS = {0: [10.0, 9.0], 1: [100.0, 1.0], 2: [5.0, 4.0]}   # per trial, per epoch


@pytest.mark.slow
def test_hopeless_trials_are_pruned_by_their_validation_fid(tmp_path: Path, monkeypatch) -> None:
    """Trial 1's first FID is worse than trial 0's at that epoch: pruned after epoch 1, with
    that epoch's record and checkpoint kept; trials 0 and 2 complete with their last FID."""
    from gankit.training.loop import Trainer

    def fake_evaluate(self) -> dict[str, float]:   # the loop's FID, without the cost
        return {"val/fid": FIDS[self.trial.number][self.epoch]}
    monkeypatch.setattr(Trainer, "evaluate", fake_evaluate)
    spec = parse_tune({**BASE, "set": {**BASE["set"], "epochs": 2}, "space": LR,
                       "pruner": {"startup_trials": 1, "warmup_epochs": 0}})
    result = tune(spec, 3, out=tmp_path, study_name="p", echo=lambda s: None)
    trials = result.study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert [t.value for t in trials] == [9.0, 100.0, 4.0]   # pruned: its last report
    assert trials[1].intermediate_values == {1: 100.0}
    pruned = tmp_path / "p" / "trial-0001" / "metrics.jsonl"
    assert len(pruned.read_text().splitlines()) == 1
    assert (tmp_path / "p" / "trials.csv").read_text().count("\n") == 4
    assert "| 2 | complete | 4 |" in result.table
    # the study is full: running again adds nothing
    again = tune(spec, 3, out=tmp_path, study_name="p", echo=lambda s: None)
    assert len(again.study.get_trials()) == 3


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path: Path) -> None:
    f = write_yaml(tmp_path / "t.yaml", {**BASE, "space": {**LR, "model.nz": {"choices": [8, 16]}}})
    db = tmp_path / "shared.db"
    args = ("tune", str(f), "--trials", "3", "--storage", f"sqlite:///{db}", "--study", "s",
            "--out", str(tmp_path / "out"))
    procs = [gankit(*args, cwd=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    finished = [t for t in study.get_trials()
                if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 3
    assert len({t.user_attrs["worker"] for t in finished}) == 2   # both processes ran trials
    assert all(t.value is not None and t.value > 0 for t in finished)
    for t in finished:
        assert (Path(t.user_attrs["run_dir"]) / "metrics.jsonl").exists()
    assert "best: trial" in outs[0][0] + outs[1][0]


def claims_of_three_workers(url: str, trials: int) -> list[int]:
    """The trials that three workers (threads, each with its own storage and connections)
    claimed from `trials` waiting ones, each claim as Optuna's ask() makes it."""
    first = open_study(open_storage(url), "claims")
    for _ in range(trials):
        first.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING))
    claims: list[int] = []

    def worker() -> None:
        study = open_study(open_storage(url), "claims")
        while (trial := study._pop_waiting_trial_id()) is not None:
            claims.append(trial)
    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return claims


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_each_waiting_trial_is_claimed_once(db: str, tmp_path: Path,
                                            request: pytest.FixtureRequest) -> None:
    """Before BEGIN IMMEDIATE, three SQLite workers made 197 claims of 150 trials (two
    workers trained one point into one folder)."""
    url = (f"sqlite:///{tmp_path / 'claims.db'}" if db == "sqlite"
           else request.getfixturevalue("pg_url"))
    claims = claims_of_three_workers(url, 60)
    assert sorted(claims) == sorted(set(claims)) and len(claims) == 60
