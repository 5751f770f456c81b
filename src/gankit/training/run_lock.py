"""One training process per run folder.

The same command started twice (a second `gankit reproduce` into the same `--out`, a
`gankit train --resume RUN` while RUN still trains) would have two processes write one run
folder: each truncating the other's metrics, overwriting the other's checkpoints, and the
run ending as a mix of both. The process that trains a run holds an exclusive `flock` on
RUN/.lock (the operating system drops it when the process ends, however it ends, so no
stale lock outlives a crash); a second one stops with one line before it writes anything.
Where the file system has no locks (some network mounts), training goes on unlocked.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Iterator

from gankit.errors import GankitError
from gankit.training.runs import RunPaths

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None


class RunBusy(GankitError):
    """Another process is training this run folder."""


@contextmanager
def held(paths: RunPaths) -> Iterator[None]:
    """Hold the run folder's lock for the block (raises RunBusy when another process does)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    f = open(paths.lock, "a+")
    try:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                who = f.read().strip() or "a process"
                raise RunBusy(f"{paths.root} is being trained by another process ({who}); "
                              "wait for it to finish or stop it, then run the command again")
            except OSError:
                pass  # no locks on this file system
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        f.flush()
        yield
    finally:
        f.close()   # closing drops the lock
