"""Running a sweep: one run folder per point (and seed), one process per run.

Output folder (default `sweeps/NAME`):

    DIR/sweep.yaml            the sweep as run
    DIR/NNN-key=value.../     one run folder per point (`gankit train`'s layout)
    DIR/logs/NAME.log         each run's output when runs go side by side
    DIR/state.json            wall time and exit code of every run, summed over reruns
    DIR/summary.md, .csv      the comparison table
    DIR/report/               `gankit report` over all the runs (when available)

Runs are real processes (`python -m gankit.sweeps.worker RUN_DIR`), `jobs` at a time, each
with cores // jobs torch threads; with more than one at a time each run's output goes to its
log, and its epoch lines are echoed here under its name. Left to gankit (`jobs=None`, the
CLI's default), runs on the CPU with `threads: 0` go one per core: runs side by side on one
thread each finish more runs an hour than one run at a time on every core (`python
benchmarks/train_speed.py --which mlp,dcgan,default,resnet --no-jax --variants side-by-side`,
2-core Intel Xeon with AMX, 2026-12-07: per-run time 0.64x one run on two threads for report
000's MLP, 0.80x report 004's DCGAN, 0.76x `default`, 0.78x report 002's ResNet), and a
sweep's runs are independent; the last run may then train alone on one thread, which costs
less than the pairs gain (by these figures, 3 runs of `default` take about as long either
way, 4 or more less time side by side), and given the runs' estimated times (the CLI's,
unless --no-estimate) the longest start first. The seeds
of one point (`seeds:`) whose family has a batched ensemble step (training/ensemble.py: the
MLPs) and that stand at the same point of training go to one process as one ensemble
(`worker RUN_DIR RUN_DIR ...`), which takes one job (an ensemble splits in two while job
slots are free: `group_jobs`); its output goes to DIR/logs/NNN-...-seed=A+B+C.log, and each
run's `wall_s` is its share of the process's wall time. Running the same sweep again skips
finished runs, resumes unfinished ones from checkpoints/last.pt and starts cleanly the ones
that never saved one.
The runs share the sweep's process group, so a signal to the group (Ctrl-C, `kill -- -PGID`)
reaches every run, which saves a checkpoint and stops; a signal to the sweep process alone is
passed on to its runs after a grace period.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gankit.config import ConfigError, dump, to_dict
from gankit.fileio import atomic_write
from gankit.sweeps.preflight import preflight
from gankit.sweeps.processes import (POLL_S, Stopper, cpu_count, one_per_core, thread_env,
                                     worker_command)
from gankit.sweeps.spec import Run, Sweep
from gankit.sweeps.state import State
from gankit.sweeps.summary import metric_keys, write_summary
from gankit.training.checkpoint import CheckpointError, config_differences, load_checkpoint
from gankit.training.ensemble import why_not_batched
from gankit.training.runs import RunPaths

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


def read_progress(paths: RunPaths) -> tuple[int, int]:
    """(epoch, batch) of the checkpoint a run resumes from, without reading its tensors."""
    problems = []
    for ckpt in paths.resume_candidates("last"):
        if not ckpt.is_file():
            continue
        try:
            state = load_checkpoint(ckpt, mmap=True)
            return int(state["epoch"]), int(state["batch"])
        except CheckpointError as e:
            problems.append(f"{ckpt} is {e.reason}")
    raise CheckpointError(f"{'; '.join(problems)}: delete {paths.root} to start that point "
                          "again")


def plan(sweep: Sweep, out: str | Path) -> list[Planned]:
    """What each run needs. Raises ConfigError when a folder holds a run of another config."""
    return [plan_run(run, Path(out)) for run in sweep.runs]


def plan_run(run: Run, out: Path) -> Planned:
    """What one run needs, from its folder OUT/NAME."""
    paths = RunPaths(out / run.name)
    if not paths.has_checkpoint():
        return Planned(run, paths.root, "start")
    old = paths.config_dict()
    if not old:
        raise ConfigError(f"{paths.root} has a checkpoint but no readable config.yaml; "
                          "delete the folder to start the point again")
    diffs = config_differences(old, to_dict(run.cfg))
    if diffs:
        raise ConfigError(
            f"{paths.root} holds a run of another config than point {run.name} now resolves "
            f"to ({'; '.join(diffs[:4])}{' ...' if len(diffs) > 4 else ''}). Run the sweep "
            "into another folder (--out), delete that run folder, or continue it with --set "
            "KEY=VALUE for each key at its checkpoint value.")
    epoch, batch = read_progress(paths)
    done = epoch >= run.cfg.epochs and batch == 0
    return Planned(run, paths.root, "done" if done else "resume", epoch, batch)


def prepare(sweep: Sweep, out: str | Path) -> list[Planned]:
    """`plan`, then `preflight` of every point: all the checks made before anything runs."""
    planned = plan(sweep, out)
    preflight((f"point {r.name}", r.cfg) for r in sweep.runs)
    return planned


def group_jobs(sweep: Sweep, todo: list[Planned], slots: int = 1) -> list[list[Planned]]:
    """The worker processes to start, each a list of runs: the seeds of one point train as
    one ensemble when its family batches them and they stand at the same epoch and batch;
    every other run has a process of its own. While there are fewer processes than `slots`
    (--jobs), the largest ensemble splits in two: two processes side by side outrun one
    (sweeps/seeds.py). In the order of the sweep."""
    jobs: list[list[Planned]] = []
    together: dict[tuple[int, int, int], list[Planned]] = {}
    for p in todo:
        if sweep.seeds is not None and why_not_batched(p.run.cfg) is None:
            key = (p.run.point, p.epoch, p.batch)
            if key not in together:
                together[key] = []
                jobs.append(together[key])
            together[key].append(p)
        else:
            jobs.append([p])
    while len(jobs) < slots and max(map(len, jobs), default=1) > 1:
        i = max(range(len(jobs)), key=lambda j: len(jobs[j]))
        half = (len(jobs[i]) + 1) // 2
        jobs[i:i + 1] = [jobs[i][:half], jobs[i][half:]]
    return jobs


def job_name(job: list[Planned]) -> str:
    """A run's name, or for an ensemble its point's name with the seeds: 001-...-seed=0+1+2."""
    if len(job) == 1:
        return job[0].name
    return "-".join([job[0].name.rsplit("-seed=", 1)[0],
                     "seed=" + "+".join(str(p.run.seed) for p in job)])


# Writes the comparison page of some run folders into a folder and returns one line saying
# what happened (`gankit.report.compare.compare_runs`, given by the command line: the sweeps
# sit below the report layer)
Compare = Callable[[list[Path], Path], str]


def longest_first(queue: list[list[Planned]], seconds: dict[str, float]) -> list[list[Planned]]:
    """The jobs by the training they have left, longest first (ties in the sweep's order):
    with runs side by side, a long run started last would train alone at the end while the
    other cores idle (report 003's points of 10, 50, 100, 125 and 10 epochs on two cores: the
    last run ends at 175 epochs' time in the sweep's order, at 150 longest first). `seconds`
    holds each run's estimated training time from scratch (by name)."""
    def left(job: list[Planned]) -> float:
        return sum(seconds.get(p.name, 0.0) * (1 - p.epoch / max(1, p.run.cfg.epochs))
                   for p in job)
    return sorted(queue, key=lambda job: -left(job))


def run_sweep(sweep: Sweep, out: str | Path | None = None, jobs: int | None = 1,
              compare: Compare | None = None,
              echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True),
              seconds: dict[str, float] | None = None) -> SweepResult:
    """Run (or continue) every run of `sweep` into `out`, `jobs` at a time (None: one per core
    where that pays, module doc), then write and return the table (and, with `compare`, the
    runs' comparison page in `out`/report). With each run's estimated training time
    (`seconds`, by name), runs side by side start longest first."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    out = Path(out) if out is not None else default_out(sweep)
    planned = prepare(sweep, out)          # errors before anything runs
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "sweep.yaml", sweep.to_yaml())
    state = State(out)
    result = SweepResult(out, planned)
    todo = [p for p in planned if p.action != "done"]
    skipped = len(planned) - len(todo)
    if jobs is None:
        jobs = one_per_core([p.run.cfg for p in todo], len(group_jobs(sweep, todo, cpu_count())))
    queue = group_jobs(sweep, todo, jobs)
    workers = min(jobs, max(1, len(queue)))
    if seconds and workers > 1:
        queue = longest_first(queue, seconds)
    threads, env = thread_env(workers)
    echo(f"gankit sweep {sweep.name}: {len(planned)} runs in {out}"
         + (f", {skipped} already finished" if skipped else "")
         + (f"; {workers} at a time, {threads} thread{'s' * (threads > 1)} each"
            if workers > 1 else ""))
    quiet = workers > 1
    running: dict[str, tuple[subprocess.Popen, list[Planned], float, Any]] = {}
    shown: dict[str, int] = {}   # how much of each parallel run's log has been relayed
    forwarded = 0
    with Stopper() as stop:
        while queue or running:
            if stop.signals:
                result.signalled = True
                result.not_started += sum(map(len, queue))
                queue.clear()
            while queue and len(running) < jobs:
                job = queue.pop(0)
                name = job_name(job)
                running[name] = _start(job, out, env, quiet, echo, planned)
                log = running[name][3]
                if log is not None:  # opened at its end: a rerun's lines are new ones
                    shown[name] = log.tell()
            for name, (proc, job, t0, log) in list(running.items()):
                rc = proc.poll()
                if log is not None:  # after its end too: the last epoch's line
                    shown[name] = _relay_epochs(log_file(out, name), shown[name], name, echo)
                if rc is None:
                    continue
                wall = time.monotonic() - t0
                if log is not None:
                    log.close()
                del running[name]
                for p in job:
                    state.add(p.name, wall / len(job), rc)
                    result.exit_codes[p.name] = rc
                    echo(_finished_line(p, rc, wall, log_file(out, name),
                                        result.stopped(rc)))
            # Children in our process group got the signal too when it went to the group;
            # pass it on ourselves if it only came to us (or on a second signal).
            forwarded = stop.pass_on([proc for proc, *_ in running.values()], forwarded)
            if running:
                time.sleep(POLL_S)
    if result.interrupted:
        echo("gankit sweep: interrupted; run the same command again to continue "
             "(finished runs are kept, unfinished ones resume)")
    result.summary = write_summary(sweep, out, state)
    if compare is not None and not result.interrupted:
        result.report = compare([p.path for p in planned if p.path.exists()], out / "report")
    return result


def prepare_folder(p: Planned) -> str:
    """Make the run folder ready for the worker; what happens to it, e.g. "starting"."""
    if p.action == "start" and p.path.exists():
        # A folder without a checkpoint holds nothing worth keeping: start it cleanly.
        shutil.rmtree(p.path)
    p.path.mkdir(parents=True, exist_ok=True)
    # The worker trains (or resumes) the folder to this config; on resume only keys that may
    # change mid-run differ (epochs, eval, ...), which check_compatible enforces again.
    atomic_write(RunPaths(p.path).config, dump(p.run.cfg))
    return "resuming at epoch %d" % (p.epoch + 1) if p.action == "resume" else "starting"


def _start(job: list[Planned], out: Path, env: dict, quiet: bool,
           echo: Callable[[str], None], planned: list[Planned]
           ) -> tuple[subprocess.Popen, list[Planned], float, Any]:
    for p in job:
        together = f" (one ensemble of {len(job)} seeds)" if len(job) > 1 else ""
        echo(f"[{planned.index(p) + 1:>3}/{len(planned)}] {p.name}: {prepare_folder(p)}"
             + together)
    log = None
    if quiet:
        path = log_file(out, job_name(job))
        path.parent.mkdir(exist_ok=True)
        log = open(path, "a")
        stdout = stderr = log
    else:
        stdout = stderr = None  # one run at a time: its progress bar goes to our terminal
    proc = subprocess.Popen(worker_command([p.path for p in job], quiet, lines=quiet), env=env,
                            stdout=stdout, stderr=stderr)
    return proc, job, time.monotonic(), log


EPOCH_LINE = re.compile(r"epoch \d+: ")   # an epoch's summary (not "epoch 2/5: batch ...")


def _relay_epochs(path: Path, offset: int, name: str, echo: Callable[[str], None]) -> int:
    """Echo, under the run's name, each epoch summary its log gained after `offset`; return
    the offset after the last whole line. With runs side by side their output goes to logs,
    and an experiment of hours would otherwise say nothing between its runs' first and last
    lines."""
    try:
        if path.stat().st_size <= offset:
            return offset
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:  # the log is gone (moved by the user): nothing to relay
        return offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].decode(errors="replace").splitlines():
        if EPOCH_LINE.match(line):
            echo(f"      {name}: {line}")
    return offset + end


def log_file(out: Path, name: str) -> Path:
    """DIR/logs/NAME.log: the output of a run of a parallel sweep."""
    return out / "logs" / f"{name}.log"


def _finished_line(p: Planned, rc: int, wall: float, log: Path, stopped: bool) -> str:
    head = f"      {p.name}: "
    if rc == 0:
        rec = RunPaths(p.path).last_record()
        shown = ", ".join(f"{k} {rec[k]:.4g}" for k in metric_keys(rec)[:3])
        return head + f"done in {wall:.0f} s" + (f" ({shown})" if shown else "")
    if stopped:
        return head + f"stopped after {wall:.0f} s"
    tail = ""
    if log.is_file():
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        tail = (": " + lines[-1][:300]) if lines else ""
    return head + f"FAILED (exit code {rc}){tail}" + (f"; see {log}" if log.is_file() else "")
