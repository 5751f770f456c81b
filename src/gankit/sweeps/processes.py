"""Worker processes of sweeps, studies and `gankit train --seeds`: how many cores there are,
how to share them, and how to run several processes at once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gankit.config import TrainConfig
from gankit.training import fast

GRACE_S = 30.0          # after a signal to the parent alone, workers get this long before SIGTERM
POLL_S = 0.2


def cpu_count() -> int:
    """Cores this process may use (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# A training process's peak resident memory, rounded up: 1.0 GB measured for `default`, 1.6 GB
# for report 002's ResNet with a 10,000-image evaluation (one thread, 2026-12-07)
RUN_MEMORY = 2 << 30


def available_memory() -> int | None:
    """Bytes the kernel can give new processes without swapping (MemAvailable; None where
    there is no /proc/meminfo)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def one_per_core(cfgs: Iterable[TrainConfig], units: int) -> int:
    """Worker processes for `units` processes' worth of runs of `cfgs` when the user did not
    say: one per core (at most `units`, and no more than the free memory holds at RUN_MEMORY
    each) when every run trains on the CPU with its thread count left to gankit (`threads:
    0`), else 1 (a GPU, or a thread count the user chose for the machine). Two one-thread runs
    side by side outrun two runs one after the other on two threads (sweeps/seeds.py;
    runner.py for sweeps)."""
    if any(cfg.threads or fast.pick_device(cfg.device).type != "cpu" for cfg in cfgs):
        return 1
    free = available_memory()
    fit = units if free is None else free // RUN_MEMORY
    return max(1, min(cpu_count(), units, fit))


def thread_env(jobs: int) -> tuple[int, dict[str, str]]:
    """(threads, environment) for `jobs` worker processes sharing the cores: each gets
    cores // jobs torch threads (never more than the user's own OMP_NUM_THREADS)."""
    threads = max(1, cpu_count() // max(1, jobs))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the user's own limit, if lower
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "GANKIT_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    return threads, env


def worker_command(paths: list[Path], quiet: bool, lines: bool = False) -> list[str]:
    """The command of a worker training the run folders `paths` (several: one ensemble):
    `quiet` without a bar or lines, `lines` with a line per epoch and per heartbeat and no
    bar (its output goes to a log file)."""
    return [sys.executable, "-m", "gankit.sweeps.worker", *map(str, paths)] + (
        ["--lines"] if lines else ["--quiet"] if quiet else [])


class Stopper:
    """Turns SIGINT/SIGTERM to this process into a list of their times (the caller decides:
    stop starting runs, pass the signal on), instead of a KeyboardInterrupt."""

    def __init__(self) -> None:
        self.signals: list[float] = []
        self.old: dict[int, Any] = {}

    def __enter__(self) -> "Stopper":
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[s] = signal.signal(s, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum: int, frame: Any) -> None:
        self.signals.append(time.monotonic())

    def pass_on(self, procs: list[subprocess.Popen], forwarded: int) -> int:
        """SIGTERM to the running `procs` when a signal came to this process alone: after
        GRACE_S (a Ctrl-C reached the whole process group, and the workers are saving), or at
        once on a second signal. Returns how many signals have been passed on."""
        if not self.signals:
            return forwarded
        due = len(self.signals) > 1 or time.monotonic() - self.signals[0] > GRACE_S
        if due and forwarded < len(self.signals):
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            return len(self.signals)
        return forwarded

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def run_together(commands: list[list[str]], env: dict[str, str],
                 logs: list[Path | None]) -> list[int]:
    """Start every command at once (in this process group, so a Ctrl-C reaches each, which
    saves and stops), each writing to its log file or, given None, to this terminal; wait for
    all of them and return their exit codes. A signal to this process alone is passed on."""
    procs, files = [], []
    with Stopper() as stop:
        for cmd, log in zip(commands, logs):
            out = None
            if log is not None:
                log.parent.mkdir(parents=True, exist_ok=True)
                out = open(log, "a")
                files.append(out)
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=out))
        forwarded = 0
        try:
            while any(p.poll() is None for p in procs):
                forwarded = stop.pass_on(procs, forwarded)
                time.sleep(POLL_S)
        finally:
            for f in files:
                f.close()
    return [p.returncode for p in procs]
