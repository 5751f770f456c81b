"""Worker processes of sweeps and studies: how many cores there are and how to share them."""
from __future__ import annotations

import os


def cpu_count() -> int:
    """Cores this process may use (its affinity mask on Linux)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_env(jobs: int) -> tuple[int, dict[str, str]]:
    """(threads, environment) for `jobs` worker processes sharing the cores: each gets
    cores // jobs torch threads (never more than the user's own OMP_NUM_THREADS)."""
    threads = max(1, cpu_count() // max(1, jobs))
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the user's own limit, if lower
        threads = max(1, min(threads, int(os.environ["OMP_NUM_THREADS"])))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "GANKIT_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    return threads, env
