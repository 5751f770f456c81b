"""The objective of a study: train one trial's config, report its validation FID to Optuna
and prune it when it is worse than the median of earlier trials at the same epoch.

The stop takes effect at the next batch, after the epoch's record and checkpoint are saved,
so a pruned trial's folder is a coherent run that ended early. The objective is the FID of
the last evaluation (the final model, as in `gankit sweep`'s table).
"""
from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.config import TrainConfig
from gankit.sweeps.spec import yaml_value
from gankit.sweeps.study import counted
from gankit.sweeps.tune_file import TuneSpec
from gankit.training.loop import Trainer
from gankit.training.runs import RunPaths


class SurplusTrial(Exception):
    """Another process reached --trials first: this trial is not needed."""


class PruningTrainer(Trainer):
    """A Trainer that reports every evaluation's FID to an Optuna trial."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, trial: Any) -> None:
        super().__init__(cfg, run_dir, progress=False)
        self.trial = trial
        self.prune_at: int | None = None
        self.hooks.append(PruningTrainer._check)

    def evaluate(self) -> dict[str, float]:
        res = super().evaluate()
        fid = res.get(f"{self.cfg.eval.split}/fid")
        if fid is not None and math.isfinite(fid):
            epoch = self.epoch + 1      # the epoch being finished
            self.trial.report(fid, step=epoch)
            if self.trial.should_prune():
                self.prune_at = epoch
        return res

    @staticmethod
    def _check(trainer: "PruningTrainer", epoch: int, batch: int) -> None:
        # first batch after a pruned evaluation: its record and checkpoint are written
        if trainer.prune_at is not None:
            import optuna
            raise optuna.TrialPruned(f"validation FID at epoch {trainer.prune_at} is "
                                     "worse than the median of earlier trials")


@dataclass
class Objective:
    """Called by Optuna once per trial: trains it into trials_dir/trial-NNNN and returns the
    last validation FID (NaN, a failed trial, when there is none)."""
    spec: TuneSpec
    trials_dir: Path
    total: int
    echo: Any = None
    current: int | None = None      # the number of the trial being trained

    def __call__(self, trial: Any) -> float:
        import optuna
        self.current = trial.number
        if counted(trial.study, before=trial.number) >= self.total:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"the study already has {self.total} trials")
        params = {p.key: p.suggest(trial) for p in self.spec.space}
        cfg = self.spec.config(params)
        run_dir = self.trials_dir / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir.resolve()))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("params_yaml", {k: yaml_value(v) for k, v in params.items()})
        self._echo(f"trial {trial.number}: " + ", ".join(f"{k}={yaml_value(v)}"
                                                         for k, v in params.items()))
        trainer = PruningTrainer(cfg, run_dir, trial)
        try:
            trainer.run()
        except optuna.TrialPruned:
            self._echo(f"trial {trial.number}: pruned at epoch {trainer.prune_at}")
            raise
        key = f"{cfg.eval.split}/fid"
        paths = RunPaths(run_dir)
        fid = paths.last_record().get(key)
        if fid is None or not math.isfinite(fid):
            # Optuna records a NaN objective as a failed trial and goes on with the next
            self._echo(f"trial {trial.number}: no finite {key} in {paths.metrics}")
            return math.nan
        self._echo(f"trial {trial.number}: {key} {fid:.4g}")
        return float(fid)

    def _echo(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)
