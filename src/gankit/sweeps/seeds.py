"""`gankit train --seeds` in several processes at once: each trains its share of the seeds (one
batched ensemble where the family has one, training/ensemble.py) with cores // processes
torch threads, in the same OUT/seedNNN run folders as one process would.

Why: one process leaves part of the CPU idle between its ops (Python, small elementwise
kernels, the epoch's evaluation), and a second process fills it. Report 000's MLP, 8 seeds,
fused bf16 step, 2-core Intel Xeon with AMX, 2026-12-05 (per seed per step, two interleaved
repeats): one 8-member ensemble on 2 threads 1.41-1.65 ms, two 4-member ensembles on 1
thread each, side by side, 1.22-1.29 ms (0.78-0.85x); 2 seeds as two single runs side by
side 1.42 ms against one 2-member ensemble's 1.89 (0.75x). Two processes of 2 threads each
on 2 cores were many times slower (their OpenMP threads spin against each other), hence
cores // processes threads. So for a family with a batched ensemble step on a CPU the
default is one process per core. The other families have no batched step, but two runs side
by side on one thread each took 0.85x (`default`) and 0.69x (report 004's DCGAN) the time per
run of one run on two threads (bf16, same day). A process trains its runs one after another,
so seeds that do not divide evenly among the processes leave a core idle at the end (3 seeds
of `default` in two processes: about 1.13x the time of one process): for these families the
default is one process per core when the seeds divide evenly, else one process.
"""
from __future__ import annotations

import sys
from pathlib import Path

from gankit.config import TrainConfig, dump
from gankit.data.loader import shard
from gankit.errors import GankitError, UserError
from gankit.fileio import atomic_write
from gankit.sweeps.processes import one_per_core, run_together, thread_env, worker_command
from gankit.training.ensemble import why_not_batched
from gankit.training.loop import Interrupted
from gankit.training.runs import RunPaths


class SeedsFailed(GankitError):
    """A process training some of the seeds stopped with an error (it said which)."""


def processes_for(cfg: TrainConfig, seeds: int, jobs: int | None = None) -> int:
    """How many processes train `seeds` runs of `cfg`: `jobs` when given (at most one per
    seed); else, on a CPU with the thread count left to gankit (threads: 0), one per core
    (at most one per seed), for a family without a batched ensemble step only when the seeds
    divide evenly among them; else one."""
    if jobs is not None:
        if jobs < 1:
            raise UserError(f"--jobs must be at least 1, got {jobs}")
        return min(jobs, seeds)
    n = one_per_core([cfg], seeds)
    if why_not_batched(cfg) is not None and seeds % n:
        return 1
    return n


def split(items: list, parts: int) -> list[list]:
    """`items` in `parts` consecutive groups whose sizes differ by at most one (the loader's
    `shard` of positions, applied to the seeds)."""
    return [items[slice(*shard(0, len(items), i, parts))] for i in range(parts)]


def train_in_processes(jobs: list[tuple[TrainConfig, Path]], processes: int, out: Path,
                       quiet: bool = False) -> list[Path]:
    """Train each (config, run folder) pair, new or to be resumed (its config holds only
    resumable changes), in `processes` worker processes at once. The first group's progress
    shows here; the others' output goes to OUT/logs/seeds=A+B+....log. A stop by a signal
    saves every run (Interrupted, to continue with `gankit train --resume OUT`); a failed
    group is one error line naming its log."""
    for cfg, path in jobs:
        path.mkdir(parents=True, exist_ok=True)
        atomic_write(RunPaths(path).config, dump(cfg))
    groups = split(jobs, processes)
    threads, env = thread_env(processes)
    logs: list[Path | None] = [None] + [
        out / "logs" / f"seeds={'+'.join(str(c.seed) for c, _ in g)}.log" for g in groups[1:]]
    names = [", ".join(str(c.seed) for c, _ in g) for g in groups]
    first = f"seed{'s' if len(groups[0]) > 1 else ''} {names[0]}"
    print(f"gankit: {len(jobs)} seeds in {processes} processes at once, {threads} thread"
          f"{'s' if threads > 1 else ''} each (seeds {'; '.join(names)}); the progress below "
          f"is that of {first}, the others write to {out / 'logs'}", file=sys.stderr)
    rcs = run_together([worker_command([p for _, p in g], quiet=quiet or i > 0)
                        for i, g in enumerate(groups)], env, logs)
    if any(rc == Interrupted.exit_code or rc < 0 for rc in rcs):
        raise Interrupted(f"by a signal; each of the {len(jobs)} runs saved a checkpoint. "
                          f"Continue with: gankit train --resume {out}")
    failed = [(names[i], rc, logs[i]) for i, rc in enumerate(rcs) if rc != 0]
    if failed:
        seeds, rc, log = failed[0]
        where = f"its output is in {log}" if log else "its error is above"
        err = SeedsFailed(f"the process training seeds {seeds} stopped with exit code {rc}; "
                          f"{where}")
        err.exit_code = rc if rc > 0 else 1
        raise err
    return [p for _, p in jobs]
