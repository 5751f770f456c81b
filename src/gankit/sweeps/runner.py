"""Running a sweep: one run folder per point (and seed), one process per run.

Output folder (default `sweeps/NAME`):

    DIR/sweep.yaml            the sweep as run
    DIR/NNN-key=value.../     one run folder per point (`gankit train`'s layout)
    DIR/logs/NAME.log         each run's output when runs go in parallel (--jobs > 1)
    DIR/state.json            wall time and exit code of every run, summed over reruns
    DIR/summary.md, .csv      the comparison table
    DIR/report/               `gankit report` over all the runs (when available)

Runs are real processes (`python -m gankit.sweeps.worker RUN_DIR`), `jobs` at a time, each
with cores // jobs torch threads. Running the same sweep again skips finished runs, resumes
unfinished ones from checkpoints/last.pt and starts cleanly the ones that never saved one.
The runs share the sweep's process group, so a signal to the group (Ctrl-C, `kill -- -PGID`)
reaches every run, which saves a checkpoint and stops; a signal to the sweep process alone is
passed on to its runs after a grace period.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from gankit.config import ConfigError, TrainConfig, to_dict
from gankit.sweeps.spec import Run, Sweep

GRACE_S = 30.0          # after a signal to the sweep alone, runs get this long before SIGTERM
POLL_S = 0.2
EXIT_INTERRUPTED = 130  # what `gankit train` and the worker return when stopped by a signal


@dataclass
class Planned:
    """A run of the sweep and what its folder holds before this invocation."""
    run: Run
    path: Path
    action: str          # "done" (skip) | "resume" | "start" (new or restarted cleanly)
    epoch: int = 0       # epochs completed according to checkpoints/last.pt
    batch: int = 0       # and batches into the next one

    @property
    def name(self) -> str:
        return self.run.name


@dataclass
class SweepResult:
    out: Path
    planned: list[Planned]
    exit_codes: dict[str, int] = field(default_factory=dict)   # runs started this time
    signalled: bool = False    # SIGINT/SIGTERM reached the sweep
    not_started: int = 0       # runs left unstarted because of it
    summary: str = ""
    report: str = ""     # what happened to `gankit report` (one line)

    @property
    def failed(self) -> list[str]:
        return [n for n, rc in self.exit_codes.items() if rc != 0 and not self.stopped(rc)]

    def stopped(self, rc: int) -> bool:
        """A run that a signal stopped (not a failure: running the sweep again resumes it)."""
        return rc == EXIT_INTERRUPTED or (rc < 0 and self.signalled)

    @property
    def interrupted(self) -> bool:
        """A signal left runs unfinished (the sweep is to be run again)."""
        return self.signalled and (self.not_started > 0 or any(
            self.stopped(rc) for rc in self.exit_codes.values()))


def default_out(sweep: Sweep) -> Path:
    return Path("sweeps") / sweep.name


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def read_progress(ckpt: Path) -> tuple[int, int]:
    """(epoch, batch) of a checkpoint without reading its tensors (memory-mapped)."""
    import torch
    from gankit.training.checkpoint import CheckpointError
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        return int(state["epoch"]), int(state["batch"])
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise CheckpointError(f"{ckpt} cannot be read ({type(e).__name__}: {e}); delete that "
                              "run folder to start the point again") from None


def plan(sweep: Sweep, out: str | Path) -> list[Planned]:
    """What each run needs. Raises ConfigError when a folder holds a run of another config."""
    from gankit.training import fast
    from gankit.training.checkpoint import config_differences
    out = Path(out)
    planned = []
    for run in sweep.runs:
        path = out / run.name
        ckpt = path / "checkpoints" / "last.pt"
        if not ckpt.exists():
            planned.append(Planned(run, path, "start"))
            continue
        config = path / "config.yaml"
        old = yaml.safe_load(config.read_text()) if config.is_file() else None
        if not isinstance(old, dict):
            raise ConfigError(f"{path} has a checkpoint but no readable config.yaml; delete the "
                              "folder to start the point again")
        diffs = config_differences(fast.comparable(old), fast.comparable(to_dict(run.cfg)))
        if diffs:
            raise ConfigError(
                f"{path} holds a run of another config than point {run.name} now resolves to "
                f"({'; '.join(diffs[:4])}{' ...' if len(diffs) > 4 else ''}). Run the sweep "
                "into another folder (--out) or delete that run folder.")
        epoch, batch = read_progress(ckpt)
        done = epoch >= run.cfg.epochs and batch == 0
        planned.append(Planned(run, path, "done" if done else "resume", epoch, batch))
    return planned


def preflight(runs: Iterable[tuple[str, TrainConfig]]) -> None:
    """What resolving a config cannot see, checked before anything runs: every dataset loads
    (and has labels when the model is conditional), every model builds for its data (on
    PyTorch's meta device: no memory, no compute) and every loss exists. Each distinct
    dataset and model is checked once; loading the data here also fetches it once, not once
    per job. Raises ConfigError (or DataError) naming the run."""
    import torch

    from gankit.data import load_arrays, qualified_name
    from gankit.losses import get_loss
    from gankit.models import build_models
    datasets: dict[tuple, tuple[tuple[int, int, int], int]] = {}
    built: set[str] = set()
    for name, cfg in runs:
        d = cfg.data
        key = (qualified_name(d.name, d.classes), d.data_dir)
        if key not in datasets:
            arrays = load_arrays(key[0], "val", d.data_dir)
            classes = 0 if arrays.labels is None else len(arrays.classes)
            datasets[key] = (tuple(arrays.images.shape[1:]), classes)
        shape, classes = datasets[key]
        try:
            get_loss(cfg.loss)
            model_key = json.dumps([to_dict(cfg.model), shape, classes], sort_keys=True)
            if model_key in built:
                continue
            built.add(model_key)
            try:
                with torch.device("meta"):
                    build_models(cfg.model, shape, classes)
            except ConfigError:
                raise
            except Exception:  # noqa: BLE001 - the meta device's limits, not the config's
                pass
        except ConfigError as e:
            raise ConfigError(f"{name}: {e}") from None


class State:
    """DIR/state.json: per run, wall time summed over invocations and the last exit code."""

    def __init__(self, out: Path) -> None:
        self.path = out / "state.json"
        self.data: dict[str, Any] = {"runs": {}}
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                pass

    def get(self, name: str) -> dict[str, Any]:
        return self.data["runs"].get(name, {})

    def add(self, name: str, wall_s: float, exit_code: int) -> None:
        entry = self.data["runs"].setdefault(name, {"wall_s": 0.0})
        entry["wall_s"] = entry.get("wall_s", 0.0) + wall_s
        entry["exit_code"] = exit_code
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)


class _Stopper:
    """Turns SIGINT/SIGTERM to the sweep into a flag (the loop stops starting runs)."""

    def __init__(self) -> None:
        self.signals: list[float] = []
        self.old: dict[int, Any] = {}

    def __enter__(self) -> "_Stopper":
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[s] = signal.signal(s, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.signals.append(time.monotonic())

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def worker_command(path: Path, quiet: bool) -> list[str]:
    return [sys.executable, "-m", "gankit.sweeps.worker", str(path)] + (["--quiet"] if quiet
                                                                         else [])


def run_sweep(sweep: Sweep, out: str | Path | None = None, jobs: int = 1, report: bool = True,
              echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)
              ) -> SweepResult:
    """Run (or continue) every run of `sweep` into `out`, then write and return the table."""
    from gankit.sweeps.summary import write_summary
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    out = Path(out) if out is not None else default_out(sweep)
    planned = plan(sweep, out)          # errors before anything runs
    preflight((f"point {r.name}", r.cfg) for r in sweep.runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(sweep.to_yaml())
    state = State(out)
    result = SweepResult(out, planned)
    todo = [p for p in planned if p.action != "done"]
    skipped = len(planned) - len(todo)
    echo(f"gankit sweep {sweep.name}: {len(planned)} runs in {out}"
         + (f", {skipped} already finished" if skipped else "")
         + (f"; {jobs} at a time" if jobs > 1 and todo else ""))
    threads = max(1, cpu_count() // min(jobs, max(1, len(todo))))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the user's own limit, if lower
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "GANKIT_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    quiet = jobs > 1
    running: dict[str, tuple[subprocess.Popen, Planned, float, Any]] = {}
    queue = list(todo)
    forwarded = 0
    with _Stopper() as stop:
        while queue or running:
            if stop.signals:
                result.signalled = True
                result.not_started += len(queue)
                queue.clear()
            while queue and len(running) < jobs:
                p = queue.pop(0)
                running[p.name] = _start(p, out, env, quiet, echo,
                                         f"[{planned.index(p) + 1:>3}/{len(planned)}]")
            for name, (proc, p, t0, log) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                wall = time.monotonic() - t0
                if log is not None:
                    log.close()
                del running[name]
                state.add(name, wall, rc)
                result.exit_codes[name] = rc
                echo(_finished_line(p, rc, wall, out, result.stopped(rc)))
            if stop.signals:
                # Children in our process group got the signal too when it went to the group;
                # pass it on ourselves if it only came to us (or on a second signal).
                due = len(stop.signals) > 1 or time.monotonic() - stop.signals[0] > GRACE_S
                if running and due and forwarded < len(stop.signals):
                    for proc, *_ in running.values():
                        if proc.poll() is None:
                            proc.send_signal(signal.SIGTERM)
                    forwarded = len(stop.signals)
            if running:
                time.sleep(POLL_S)
    if result.interrupted:
        echo("gankit sweep: interrupted; run the same command again to continue "
             "(finished runs are kept, unfinished ones resume)")
    result.summary = write_summary(sweep, out, state)
    if report and not result.interrupted:
        result.report = run_report([p.path for p in planned if p.path.exists()], out / "report")
    return result


def _start(p: Planned, out: Path, env: dict, quiet: bool, echo: Callable[[str], None],
           counter: str) -> tuple[subprocess.Popen, Planned, float, Any]:
    from gankit.config import dump
    if p.action == "start" and p.path.exists():
        # A folder without a checkpoint holds nothing worth keeping: start it cleanly.
        shutil.rmtree(p.path)
    p.path.mkdir(parents=True, exist_ok=True)
    # The worker trains (or resumes) the folder to this config; on resume only keys that may
    # change mid-run differ (epochs, eval, ...), which check_compatible enforces again.
    (p.path / "config.yaml").write_text(dump(p.run.cfg))
    verb = "resuming at epoch %d" % (p.epoch + 1) if p.action == "resume" else "starting"
    echo(f"{counter} {p.name}: {verb}")
    log = None
    if quiet:
        (out / "logs").mkdir(exist_ok=True)
        log = open(out / "logs" / f"{p.name}.log", "a")
        stdout = stderr = log
    else:
        stdout = stderr = None  # one run at a time: its progress bar goes to our terminal
    proc = subprocess.Popen(worker_command(p.path, quiet), env=env, stdout=stdout, stderr=stderr)
    return proc, p, time.monotonic(), log


def _finished_line(p: Planned, rc: int, wall: float, out: Path, stopped: bool) -> str:
    from gankit.sweeps.summary import last_record, metric_keys
    head = f"      {p.name}: "
    if rc == 0:
        rec = last_record(p.path)
        shown = ", ".join(f"{k} {rec[k]:.4g}" for k in metric_keys(rec)[:3])
        return head + f"done in {wall:.0f} s" + (f" ({shown})" if shown else "")
    if stopped:
        return head + f"stopped after {wall:.0f} s"
    log = out / "logs" / f"{p.name}.log"
    tail = ""
    if log.is_file():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = (": " + lines[-1][:300]) if lines else ""
    return head + f"FAILED (exit code {rc}){tail}" + (f"; see {log}" if log.is_file() else "")


def run_report(runs: list[Path], out: Path) -> str:
    """`gankit report` over the sweep's runs; a one-line account of what happened."""
    from gankit.sweeps.report import compare_runs
    return compare_runs(runs, out)
