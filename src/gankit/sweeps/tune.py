"""Hyperparameter search with Optuna: minimise validation FID over a space of overrides.

`gankit tune` reads a tune file (`tune_file`), opens the storage and study (`study`), runs
trials of `objective` in this process or in worker processes (`--n-jobs`), and writes the
table of the study's trials (`tables`). Several processes, on one machine or many, join one
study; --trials counts all of them together. Pruning: each evaluation's validation FID is
reported to the trial (step = epoch) and a MedianPruner stops trials that are worse than the
median of earlier trials at that epoch.
"""
from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gankit.config import ConfigError
from gankit.fileio import atomic_write
from gankit.sweeps.objective import Objective, SurplusTrial
from gankit.sweeps.processes import thread_env
from gankit.sweeps.study import (GRACE_S, HEARTBEAT_S, default_storage, open_storage,
                                 open_study, redact, retry_of, run_one, tally, wait_s)
from gankit.sweeps.tables import fmt, markdown, to_csv
from gankit.sweeps.tune_file import TuneSpec
from gankit.training.loop import NonFiniteLoss


@dataclass
class TuneResult:
    study: Any
    out: Path
    table: str


def tune(spec: TuneSpec, trials: int, out: str | Path | None = None, storage: str | None = None,
         study_name: str | None = None, n_jobs: int = 1,
         echo: Any = lambda s: print(s, file=sys.stderr, flush=True),
         worker_args: list[str] | None = None, heartbeat: int = HEARTBEAT_S,
         grace: int = GRACE_S) -> TuneResult:
    """Run trials until the study holds `trials` finished ones (all processes together).

    n_jobs > 1 starts that many worker processes of `gankit tune` on this machine (each with
    cores // n_jobs threads), all joining the same study; `worker_args` is the command line
    they get (the CLI passes its own). A trial whose worker dies stops its heartbeat (every
    `heartbeat` s); after `grace` s the next worker to look fails it and retries it once.
    """
    import optuna
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    study_name = study_name or spec.name
    out = Path(out) if out is not None else Path("tune")
    url = storage or default_storage(out)
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    store = open_storage(url, heartbeat, grace)        # errors before anything runs
    trials_dir = out / study_name
    existed = study_name in optuna.study.get_all_study_names(store)
    if not existed and trials_dir.is_dir() and any(trials_dir.glob("trial-*")):
        raise ConfigError(f"{trials_dir} holds trials of an earlier study named {study_name!r} "
                          f"that {redact(url)} does not know; choose another --study or --out")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(store, study_name, *_sampler_pruner(spec))
    trials_dir.mkdir(parents=True, exist_ok=True)
    if n_jobs > 1:
        _run_workers(n_jobs, worker_args or [], echo)
    else:
        _work(study, store, Objective(spec, trials_dir, trials, echo), trials,
              f"study {study_name} in {redact(url)}", echo)
    table = trials_table(study)
    atomic_write(trials_dir / "trials.csv", trials_csv(study))
    return TuneResult(study, trials_dir, table)


def _sampler_pruner(spec: TuneSpec) -> tuple[Any, Any]:
    import optuna
    sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed)
    pruner = (optuna.pruners.NopPruner() if spec.pruner is None else
              optuna.pruners.MedianPruner(n_startup_trials=spec.pruner["startup_trials"],
                                          n_warmup_steps=spec.pruner["warmup_epochs"]))
    return sampler, pruner


def _work(study: Any, store: Any, objective: Objective, trials: int, name: str,
          echo: Any) -> None:
    """One worker: run trials (retries of stopped ones first) until the study holds `trials`
    finished ones. While the last ones run in other workers it waits, and takes over any
    whose heartbeat stops (failed, then retried here)."""
    first, waiting_said = True, False
    while True:
        t = tally(study)                  # fails stale trials and enqueues their retries
        if t.finished >= trials:
            if first:
                echo(f"{name} already has {t.finished} finished trials (--trials {trials})")
            return
        if first:
            echo(f"{name}: {t.finished} trials finished so far, running to {trials}; trial "
                 f"folders in {objective.trials_dir}")
            first = False
        if t.finished + t.running >= trials and not t.waiting:
            if not waiting_said:
                echo(f"waiting for {t.running} trial(s) running in other workers (one whose "
                     "worker stops is retried here)")
                waiting_said = True
            time.sleep(wait_s(store))
            continue
        waiting_said = False
        run_one(study, store, objective, (NonFiniteLoss, SurplusTrial), echo)


def _run_workers(n: int, args: list[str], echo: Any) -> None:
    threads, env = thread_env(n)
    cmd = [sys.executable, "-m", "gankit.cli.main", "tune", *args, "--n-jobs", "1", "--worker"]
    echo(f"starting {n} worker processes ({threads} threads each)")
    procs = [subprocess.Popen(cmd, env=env) for _ in range(n)]
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    bad = [c for c in codes if c != 0]
    if bad:
        raise ConfigError(f"{len(bad)} of {n} tune workers failed (exit codes {bad})")


def _trials(study: Any) -> tuple[list[Any], list[str]]:
    """The study's trials (without surplus ones) and every searched key, in order."""
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    params: list[str] = []
    for t in trials:
        params += [k for k in t.params if k not in params]
    return trials, params


def trials_table(study: Any) -> str:
    """Markdown: every trial, best first (a pruned one shows its last reported FID)."""
    import optuna
    trials, params = _trials(study)

    def order(t: Any) -> tuple:
        return (t.state != optuna.trial.TrialState.COMPLETE,
                t.value if t.value is not None else math.inf, t.number)
    cells = []
    for t in sorted(trials, key=order):
        steps = t.intermediate_values
        value = t.value if t.value is not None else (steps[max(steps)] if steps else None)
        cells.append([str(t.number), t.state.name.lower(), fmt(value),
                      str(max(steps)) if steps else "", *(fmt(t.params.get(k)) for k in params)])
    return markdown(["trial", "state", "val/fid", "epochs", *params], cells)


def trials_csv(study: Any) -> str:
    """trials.csv: one row per trial with its value, parameters and run folder."""
    trials, params = _trials(study)
    return to_csv([{"trial": t.number, "state": t.state.name.lower(),
                    "value": "" if t.value is None else t.value,
                    **{k: t.params.get(k, "") for k in params},
                    "run_dir": t.user_attrs.get("run_dir", ""),
                    "retry_of": "" if retry_of(t) is None else retry_of(t)} for t in trials])


def best_summary(spec: TuneSpec, study: Any) -> str:
    """The best trial and a `gankit train` command that trains its config again."""
    import optuna
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return "no trial has completed yet"
    best = min(done, key=lambda t: t.value)
    params = {k: yaml.safe_load(v) for k, v in best.user_attrs.get("params_yaml", {}).items()} \
        or best.params
    return (f"best: trial {best.number}, val/fid {best.value:.4g} "
            f"({best.user_attrs.get('run_dir', '')})\n  {spec.command(params)}")


__all__ = ["TuneResult", "best_summary", "trials_csv", "trials_table", "tune"]
