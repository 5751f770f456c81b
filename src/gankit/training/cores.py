"""The CPU threads a training process takes, and a warning when other work holds the cores.

With `threads: 0` a run takes one thread per core, and its threads wait for each other at every
operation: when another job keeps a core busy, every step waits for that core. A clean
clone's `make run` (`default`, two threads) trained 28 steps a second alone and 1.25 beside a
one-thread training run on the other core of this 2-core Intel Xeon (2026-12-07): 22x slower,
where `--set threads=1` trains at a free core's own speed. The thread count stays the user's
choice (it changes a run's bits, so picking it from the machine's load would make runs
depend on what else was running); the warning names the fix.
"""
from __future__ import annotations

import functools
import os
import sys
import time

import torch

BUSY = 0.5          # cores other processes must keep busy for the warning
SAMPLE_S = 0.25     # how long the CPU's counters are watched


def set_threads(threads: int, ranks_here: int | None = None, warn: bool = True) -> None:
    """torch's CPU threads for this process: `threads` when given (> 0); else the cores shared
    out among the `ranks_here` processes of a distributed run on this machine; else torch's
    default (one per core), with a warning (`warn`: a run on the CPU) when other processes
    hold some of the cores, or when `threads` is more than the cores this process may use."""
    if threads > 0:
        torch.set_num_threads(threads)
        if warn and threads > (have := cores_per_process(1)):
            warn_if_oversubscribed(threads, have)
    elif ranks_here is not None:
        torch.set_num_threads(cores_per_process(ranks_here))
    elif warn and torch.get_num_threads() > 1:
        warn_if_shared(torch.get_num_threads())


def cores_per_process(processes: int) -> int:
    """CPU threads for each of `processes` on this machine: its cores shared out."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, processes))


def busy_cores(seconds: float = SAMPLE_S) -> float | None:
    """How many of the machine's cores other processes kept busy over the next `seconds`
    (this process sleeps meanwhile), from /proc/stat; None where it cannot be read."""
    def idle_and_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return ticks[3] + ticks[4], sum(ticks)   # idle + iowait, all
    try:
        idle0, total0 = idle_and_total()
        time.sleep(seconds)
        idle1, total1 = idle_and_total()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


@functools.cache   # once per process (an ensemble builds a trainer per member)
def warn_if_shared(threads: int) -> None:
    """One line on stderr when other work holds cores this run's `threads` would use."""
    busy = busy_cores()
    if busy is not None and busy >= BUSY:
        print(f"gankit: other processes keep about {busy:.1f} of this machine's "
              f"{os.cpu_count()} cores busy; a run on {threads} threads waits for them at every "
              "step (22x slower measured here): --set threads=1 trains at a free core's speed",
              file=sys.stderr, flush=True)


@functools.cache
def warn_if_oversubscribed(threads: int, have: int) -> None:
    """One line on stderr when a run asks for more `threads` than the `have` cores it may
    use: its threads take turns on the cores and wait for each other at every operation
    (`default` on 256 images, one epoch: 10.0 s on 2 threads, 20.6 s on 64, 220.5 s on 999;
    this 2-core Intel Xeon, 2026-12-07, beside two one-thread runs)."""
    print(f"gankit: threads={threads} is more than the {have} core(s) this process may use; "
          f"its threads take turns and every step waits (22x slower measured at 999 on 2 "
          f"cores): --set threads={have} (or 0, one per core) is faster",
          file=sys.stderr, flush=True)
