"""Running a report's experiments (through the sweep runner: resumable, --jobs) and reading
gankit's counterpart of each number the report states."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gankit.data.datasets import qualified_name
from gankit.metrics.evaluate import evaluate_generator
from gankit.models import count_parameters
from gankit.reproduce.registry import Experiment, Report, Stated
from gankit.training.estimate import SpeedMeter, fmt_duration
from gankit.sweeps.runner import run_sweep
from gankit.sweeps.spec import Run, Sweep
from gankit.training.runs import RunPaths, load_run

Echo = Callable[[str], None]


def _stderr(s: str) -> None:
    print(s, file=sys.stderr, flush=True)


@dataclass
class Ours:
    """gankit's value for one stated result (None when the run did not produce it)."""
    stated: Stated
    value: float | None
    epoch: int | None            # the epoch the value is from (None: not per epoch)
    run: Path
    why: str = ""                # why there is no value


@dataclass
class ExperimentResult:
    experiment: Experiment
    sweep: Sweep
    out: Path
    wall_s: float
    failed: list[str]
    interrupted: bool
    ours: list[Ours] = field(default_factory=list)


def default_out(report: Report, scale: str) -> Path:
    return Path("reproductions") / f"r{report.number}-{scale}"


def estimate(sweep: Sweep, meter: SpeedMeter) -> list[tuple[Run, float]]:
    """(run, estimated seconds of its training steps on this machine) of every run."""
    return [(run, meter.run_seconds(run.cfg)) for run in sweep.runs]


def run_experiment(exp: Experiment, scale: str, out: Path, jobs: int, extra: dict[str, Any],
                   meter: SpeedMeter | None = None, echo: Echo = _stderr) -> ExperimentResult:
    """Run (or continue) one experiment into out/NAME and read our value of each stated one."""
    sweep = exp.load(scale, extra)
    folder = out / exp.name
    if meter is not None:
        for run, secs in estimate(sweep, meter):
            echo(f"  {exp.name}/{run.name}: {run.cfg.epochs} epochs, about "
                 f"{fmt_duration(secs)} of training on this machine")
    t0 = time.monotonic()
    res = run_sweep(sweep, folder, jobs=jobs, report=False, echo=echo)
    result = ExperimentResult(exp, sweep, folder, time.monotonic() - t0, res.failed,
                              res.interrupted)
    if not res.interrupted:
        result.ours = [our_value(s, sweep, folder) for s in exp.stated]
    return result


def point_run(sweep: Sweep, point: int) -> Run:
    """The first run of a sweep point (its first seed)."""
    return next(r for r in sweep.runs if r.point == point)


def our_value(stated: Stated, sweep: Sweep, folder: Path) -> Ours:
    """gankit's counterpart of a stated number, read from (or measured on) the point's run."""
    run = point_run(sweep, stated.point)
    path = folder / run.name
    paths = RunPaths(path)
    if not paths.has_checkpoint():
        return Ours(stated, None, None, path, "the run did not finish")
    kind, _, metric = stated.key.partition("/")
    if kind == "params":
        trained = load_run(path, "last")
        net = trained.G if metric == "G" else trained.D
        return Ours(stated, count_parameters(net), None, path)
    if kind == "test":
        cfg = run.cfg
        trained = load_run(path, "best")
        res = evaluate_generator(trained.G, qualified_name(cfg.data.name, cfg.data.classes),
                                 split="test", n=cfg.eval.n, features=cfg.eval.features,
                                 seed=cfg.seed, data_dir=cfg.data.data_dir, scale=cfg.data.scale)
        return Ours(stated, res.get(metric), trained.epoch, path)
    rows = [r for r in paths.read_metrics() if stated.key in r]
    if not rows:
        return Ours(stated, None, None, path, f"{stated.key} was not recorded")
    at = [r for r in rows if r["epoch"] == stated.epoch]
    row = at[0] if at else rows[-1]
    return Ours(stated, float(row[stated.key]), int(row["epoch"]), path)


def reproduce(report: Report, scale: str, out: Path, jobs: int = 1,
              extra: dict[str, Any] | None = None, echo: Echo = _stderr
              ) -> list[ExperimentResult]:
    """Run every experiment of `report` at `scale` into `out` (one folder per experiment)."""
    meter = SpeedMeter()
    results = []
    echo(f"gankit reproduce {report.number} ({scale}): {len(report.experiments)} experiment(s) "
         f"into {out}")
    for exp in report.experiments:
        results.append(run_experiment(exp, scale, out, jobs, extra or {}, meter, echo))
        if results[-1].interrupted:
            break
    return results
