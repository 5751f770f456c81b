"""A sweep shared by workers on several machines: its points are trials of an Optuna study.

`gankit sweep FILE --storage URL` on each machine is one worker. The worker that creates the
study (named `sweep-NAME`, or --study) enqueues one WAITING trial per point (user attribute
`point`) and marks the study; each worker claims the next waiting trial through the database
(Optuna's ask() takes a waiting trial atomically), trains that point into OUT/POINT (its own
folder, or a shared filesystem), and marks the trial COMPLETE, or FAILED when training failed.
A point is trained by the first trial of it that a worker claimed and that has not failed, so
a point enqueued twice (two workers adding the points of a grown sweep file at once) runs
once. A point whose worker dies is failed by the heartbeat after the grace period and retried
once by the next worker, resuming from its last checkpoint when the folder is shared
(`study`). Each worker runs until no point is waiting or running, then writes the table of
the folders it can see.

The trial's value is unused (0); the run folders hold the results, the trials their wall
time, exit code and worker.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gankit.errors import GankitError
from gankit.fileio import atomic_write
from gankit.sweeps.runner import Compare, SweepResult, plan_run, prepare, prepare_folder
from gankit.sweeps.spec import Run, Sweep
from gankit.sweeps.state import State
from gankit.sweeps.study import (GRACE_S, HEARTBEAT_S, join_study, open_storage, redact,
                                 run_one, tally, wait_s)
from gankit.sweeps.summary import write_summary
from gankit.sweeps.worker import train_folder
from gankit.training.loop import Interrupted

POINT = "point"          # the user attribute naming a trial's point
ENQUEUED = "enqueued"    # a study's user attribute: its points are enqueued
ENQUEUE_WAIT_S = 30.0    # how long a worker that found the study waits for that mark


class NotOwner(Exception):
    """The trial names no point, or one that another trial of the study trains."""


class PointFailed(Exception):
    """Training the point failed with a user error (recorded in the trial)."""


@dataclass
class PointObjective:
    """Called by Optuna once per claimed trial: trains its point into OUT/POINT."""
    runs: dict[str, Run]
    out: Path
    echo: Callable[[str], None]
    current: int | None = None
    ran: list[str] = field(default_factory=list)

    def __call__(self, trial: Any) -> float:
        self.current = trial.number
        name = trial.user_attrs.get(POINT)
        owner = _owner(trial.study, name) if name in self.runs else None
        if owner != trial.number:
            # no waiting point was left when Optuna asked, or another trial has this point
            trial.set_user_attr("duplicate", True)
            raise NotOwner(f"trial {trial.number}: point {name} is trained by trial {owner}")
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        p = plan_run(self.runs[name], self.out)
        t0 = time.monotonic()
        code = 0
        if p.action == "done":
            self.echo(f"{name}: already finished in {p.path}")
        else:
            self.echo(f"trial {trial.number}: {name}: {prepare_folder(p)}")
            try:
                train_folder(p.path, progress=False)
            except Interrupted:
                code = Interrupted.exit_code
                raise
            except GankitError as e:
                code = e.exit_code
                self.echo(f"{name}: FAILED (exit code {code}): {e}")
            finally:
                trial.set_user_attr("wall_s", time.monotonic() - t0)
                trial.set_user_attr("exit_code", code)
        self.ran.append(name)
        if code:   # Optuna records the trial as failed (not retried: it would fail again)
            raise PointFailed(f"point {name} failed with exit code {code}")
        self.echo(f"{name}: done in {time.monotonic() - t0:.0f} s")
        return 0.0


def _owner(study: Any, name: str) -> int | None:
    """The trial that trains point `name`: the first one claimed (started) that has not
    failed. Not the lowest-numbered: two workers enqueueing at once can commit a point's
    lower-numbered copy after a worker claimed the other, and the later claim then took the
    point over and emptied its folder under the first (seen once in the test suite)."""
    import optuna
    mine = [(t.datetime_start, t.number) for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get(POINT) == name and t.state != optuna.trial.TrialState.FAIL
            and t.datetime_start is not None]
    return min(mine)[1] if mine else None


def _enqueue(study: Any, sweep: Sweep, created: bool, echo: Callable[[str], None]) -> int:
    """A WAITING trial for every point the study does not hold yet; how many were added.

    Only the worker that created the study enqueues at first, then marks the study (ENQUEUED);
    a worker that found it waits for the mark, then adds the points it lacks (a sweep file that
    grew since). When every worker enqueued, two starting at once made two copies of each
    point, and which copy a worker had claimed first was decided by the claim times of two
    machines' clocks."""
    import optuna
    if not created:
        deadline = time.monotonic() + ENQUEUE_WAIT_S
        while ENQUEUED not in study.user_attrs:
            if time.monotonic() > deadline:
                echo(f"the study's points were not marked as enqueued within {ENQUEUE_WAIT_S:g}"
                     " s (its first worker stopped while enqueueing them, or an older gankit "
                     "made it): enqueueing the missing ones here")
                break
            time.sleep(0.2)
    known = {t.user_attrs.get(POINT) for t in study.get_trials(deepcopy=False)}
    new = [r.name for r in sweep.runs if r.name not in known]
    for name in new:
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING,
                                                  user_attrs={POINT: name}))
    if new or created:
        study.set_user_attr(ENQUEUED, True)
    return len(new)


def run_shared(sweep: Sweep, out: str | Path, storage: str, study_name: str | None = None,
               heartbeat: int = HEARTBEAT_S, grace: int = GRACE_S,
               compare: Compare | None = None,
               echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)
               ) -> SweepResult:
    """One worker of a sweep shared through `storage`: claim and train points until none is
    waiting or running, then write the table of the run folders under `out` (and, with
    `compare`, their comparison page)."""
    import optuna
    out = Path(out)
    planned = prepare(sweep, out)               # errors before anything runs
    store = open_storage(storage, heartbeat, grace)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    name = study_name or f"sweep-{sweep.name}"
    study, created = join_study(store, name)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "sweep.yaml", sweep.to_yaml())
    added = _enqueue(study, sweep, created, echo)
    echo(f"gankit sweep {sweep.name}: {len(planned)} points shared through study {name} in "
         f"{redact(storage)}" + (f" ({added} enqueued now)" if added else "")
         + f"; run folders in {out}")
    objective = PointObjective({r.name: r for r in sweep.runs}, out, echo)
    waiting_said = False
    while True:
        t = tally(study)                        # fails stale trials and retries them
        if not t.waiting:
            if not t.running:
                break
            if not waiting_said:
                echo(f"waiting for {t.running} point(s) running in other workers (one whose "
                     "worker stops is retried here)")
                waiting_said = True
            time.sleep(wait_s(store))
            continue
        waiting_said = False
        try:
            run_one(study, store, objective, (NotOwner, PointFailed), echo)
        except (Interrupted, KeyboardInterrupt):
            echo("gankit sweep: stopped; the point is retried by the next worker (run the "
                 "same command again to continue)")
            result = SweepResult(out, planned, signalled=True, not_started=1)
            result.summary = write_summary(sweep, out, _state(study, out))
            return result
    result = SweepResult(out, planned)
    for trial in study.get_trials(deepcopy=False):
        point = trial.user_attrs.get(POINT)
        if point in objective.ran and "exit_code" in trial.user_attrs:
            result.exit_codes[point] = trial.user_attrs["exit_code"]
    result.summary = write_summary(sweep, out, _state(study, out))
    if compare is not None:
        result.report = compare([p.path for p in planned if p.path.exists()], out / "report")
    return result


def _state(study: Any, out: Path) -> State:
    """DIR/state.json from the study: every point's wall time (summed over its trials) and
    last exit code, whichever worker ran it."""
    runs: dict[str, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False):
        point, wall = t.user_attrs.get(POINT), t.user_attrs.get("wall_s")
        if point is None or wall is None or t.user_attrs.get("duplicate"):
            continue
        entry = runs.setdefault(point, {"wall_s": 0.0})
        entry["wall_s"] += wall
        entry["exit_code"] = t.user_attrs.get("exit_code", 0)
    state = State(out)
    state.replace(runs)
    return state
