"""Running a report's experiments (through the sweep runner: resumable, --jobs) and reading
gankit's counterpart of each number the report states."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gankit.data.datasets import qualified_name
from gankit.errors import UserError
from gankit.exploration.run import explore_run
from gankit.metrics.evaluate import evaluate_generator
from gankit.models import count_parameters
from gankit.reproduce.registry import Experiment, Report, Stated
from gankit.training.estimate import SpeedMeter, fmt_duration
from gankit.sweeps.runner import run_sweep
from gankit.sweeps.spec import Run, Sweep, select_points
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
    earlier: bool = False        # read from a folder an earlier invocation trained, not run

    @property
    def points(self) -> str | None:
        """The points run when `--only NAME:POINTS` picked some ("0,1,4"), else None."""
        run = sorted({r.point for r in self.sweep.runs})
        return None if len(run) == len(self.sweep.points) else ",".join(map(str, run))


def default_out(report: Report, scale: str) -> Path:
    return Path("reproductions") / f"r{report.number}-{scale}"


def estimate(sweep: Sweep, meter: SpeedMeter) -> list[tuple[Run, float]]:
    """(run, estimated seconds of its training steps on this machine) of every run."""
    return [(run, meter.run_seconds(run.cfg)) for run in sweep.runs]


def experiment_sweep(exp: Experiment, scale: str, extra: dict[str, Any],
                     points: str | None = None) -> Sweep:
    """The experiment's sweep at `scale` with `extra` (--set) applied, only `points` (--only
    NAME:POINTS) when given: what a run trains and what `--list` estimates."""
    sweep = exp.load(scale, extra)
    return select_points(sweep, points, f"--only {exp.name}:{points}") if points else sweep


def run_experiment(exp: Experiment, scale: str, out: Path, jobs: int | None,
                   extra: dict[str, Any], meter: SpeedMeter | None = None, echo: Echo = _stderr,
                   points: str | None = None) -> ExperimentResult:
    """Run (or continue) one experiment into out/NAME and read our value of each stated one.

    `points` ("3", "0,2", "1-3") runs only those points of the experiment's sweep; the stated
    numbers of the others say they were not run."""
    sweep = experiment_sweep(exp, scale, extra, points)
    folder = out / exp.name
    seconds = None
    if meter is not None:
        seconds = {run.name: secs for run, secs in estimate(sweep, meter)}
        for run in sweep.runs:
            echo(f"  {exp.name}/{run.name}: {run.cfg.epochs} epochs, about "
                 f"{fmt_duration(seconds[run.name])} of training on this machine")
    t0 = time.monotonic()
    res = run_sweep(sweep, folder, jobs=jobs, echo=echo, seconds=seconds)
    result = ExperimentResult(exp, sweep, folder, time.monotonic() - t0, res.failed,
                              res.interrupted)
    if not res.interrupted:
        explore_figures(exp, sweep, folder, echo)
    # an interrupted run's values so far too: a stated epoch it has passed is a real value
    result.ours = [our_value(s, sweep, folder) for s in exp.stated]
    return result


def earlier_results(report: Report, done: list[ExperimentResult], out: Path, scale: str,
                    extra: dict[str, Any]) -> list[ExperimentResult]:
    """The report's other experiments whose runs an earlier invocation left in `out`, read
    (not run), so that a REPRODUCTION.md written after `--only A`, then `--only B` into the
    same folder holds both. Only the points with a run folder count; the commands shown
    carry this invocation's `--set`."""
    ran = {r.experiment.name for r in done}
    found = []
    for exp in report.experiments:
        folder = out / exp.name
        if exp.name in ran or not folder.is_dir():
            continue
        sweep = experiment_sweep(exp, scale, extra)
        present = sorted({r.point for r in sweep.runs if (folder / r.name).is_dir()})
        if not present:
            continue
        if len(present) < len(sweep.points):
            sweep = select_points(sweep, ",".join(map(str, present)))
        found.append(ExperimentResult(exp, sweep, folder, 0.0, [], False,
                                      [our_value(st, sweep, folder) for st in exp.stated],
                                      earlier=True))
    return found


def explore_figures(exp: Experiment, sweep: Sweep, folder: Path, echo: Echo) -> None:
    """`gankit explore` on every finished run whose experiment lists an explore/ figure (report
    002's Figure 11), unless its figures are already there."""
    wanted = [f for f in exp.figures if f.startswith("explore/")]
    for run in sweep.runs if wanted else []:
        paths = RunPaths(folder / run.name)
        if paths.has_checkpoint() and not all((paths.root / f).exists() for f in wanted):
            echo(f"  {exp.name}/{run.name}: exploring its generator")
            explore_run(paths.root, which="best" if paths.checkpoint("best").is_file()
                        else "last")


def point_run(sweep: Sweep, point: int) -> Run:
    """The first run of a sweep point (its first seed)."""
    return next(r for r in sweep.runs if r.point == point)


def our_value(stated: Stated, sweep: Sweep, folder: Path) -> Ours:
    """gankit's counterpart of a stated number, read from (or measured on) the point's run."""
    if not any(r.point == stated.point for r in sweep.runs):
        return Ours(stated, None, None, folder, "point not run this time (--only)")
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
    rows = paths.read_metrics()
    reached, epochs = (int(rows[-1]["epoch"]) if rows else 0), run.cfg.epochs
    if reached < min(stated.epoch or epochs, epochs):
        return Ours(stated, None, None, path, f"the run stopped with {reached} of {epochs} "
                    "epochs done, before this value: run the same command again to continue")
    if kind == "test":
        cfg = run.cfg
        trained = load_run(path, "best")
        res = evaluate_generator(trained.G, qualified_name(cfg.data.name, cfg.data.classes),
                                 split="test", n=cfg.eval.n, features=cfg.eval.features,
                                 seed=cfg.seed, data_dir=cfg.data.data_dir, scale=cfg.data.scale)
        return Ours(stated, res.get(metric), trained.epoch, path)
    rows = [r for r in rows if stated.key in r]
    if not rows:
        return Ours(stated, None, None, path, f"{stated.key} was not recorded")
    at = [r for r in rows if r["epoch"] == stated.epoch]
    row = at[0] if at else rows[-1]
    return Ours(stated, float(row[stated.key]), int(row["epoch"]), path)


def parse_only(report: Report, only: list[str] | None) -> list[tuple[Experiment, str | None]]:
    """The experiments `--only NAME[:POINTS]` (repeatable) selects, in the report's order,
    with their points; every experiment when `only` is empty."""
    if not only:
        return [(exp, None) for exp in report.experiments]
    wanted: dict[str, str | None] = {}
    names = [e.name for e in report.experiments]
    for item in only:
        name, _, points = item.partition(":")
        if name not in names:
            raise UserError(f"--only {item!r}: report {report.number} has no experiment "
                            f"{name!r}; choose one of {', '.join(names)} (e.g. --only {names[0]})")
        exp = report.experiments[names.index(name)]
        if points and not exp.sweep:
            raise UserError(f"--only {item!r}: {name} is one preset, not a sweep; drop "
                            f"':{points}'")
        wanted[name] = points or None
    return [(e, wanted[e.name]) for e in report.experiments if e.name in wanted]


def reproduce(report: Report, scale: str, out: Path, jobs: int | None = 1,
              extra: dict[str, Any] | None = None, echo: Echo = _stderr,
              only: list[str] | None = None) -> list[ExperimentResult]:
    """Run every experiment of `report` (or those `only` names) at `scale` into `out` (one
    folder per experiment), `jobs` runs at a time (None: the sweep runner's choice)."""
    chosen = parse_only(report, only)
    meter = SpeedMeter()
    results = []
    echo(f"gankit reproduce {report.number} ({scale}): {len(chosen)} experiment(s) into {out}")
    for exp, points in chosen:
        results.append(run_experiment(exp, scale, out, jobs, extra or {}, meter, echo, points))
        if results[-1].interrupted:
            break
    return results
