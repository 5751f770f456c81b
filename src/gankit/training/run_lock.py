"""One training process per run folder.

The same command started twice (a second `gankit reproduce` into the same `--out`, a
`gankit train --resume RUN` while RUN still trains) would have two processes write one run
folder: each truncating the other's metrics, overwriting the other's checkpoints, and the
run ending as a mix of both. The process that trains a run holds an exclusive `flock` on
RUN/.lock (the operating system drops it when the process ends, however it ends, so no
stale lock outlives a crash); a second one stops with one line before it writes anything.
Where the file system has no locks (some network mounts), training goes on unlocked.
`holder` tells who trains a folder without taking the lock (`gankit runs`).
"""
from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gankit.errors import GankitError
from gankit.training.runs import RunPaths

try:
    import fcntl
except ImportError:  # not POSIX: no lock
    fcntl = None


# Linux's table of the locks held, one line each (`holder`)
PROC_LOCKS = Path("/proc/locks")


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


def holder(paths: RunPaths) -> int | None:
    """The pid of the process that trains the run folder (0 when it runs outside this
    process's pid namespace, e.g. in another container), or None when none does.

    Read from Linux's /proc/locks, which lists every held flock with its process and file,
    without taking the lock: a probe that took it, even for an instant, would turn away a
    `gankit train --resume` started in that instant. Without /proc/locks, the pid the lock
    file names when that process is alive (a pid reused since is then taken for the holder).
    """
    try:
        st = paths.lock.stat()
    except OSError:
        return None
    file_id = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        table = PROC_LOCKS.read_text()
    except OSError:
        return _named_pid(paths)
    for line in table.splitlines():
        # "2: FLOCK  ADVISORY  WRITE 22094 fe:00:2173335 0 EOF"; a waiter's line has "->"
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == file_id:
            return int(fields[4]) if fields[4].isdigit() else 0  # 0: outside our pid space
    return None


def _named_pid(paths: RunPaths) -> int | None:
    """The pid written in the lock file ("pid N, since T") if that process is alive."""
    try:
        m = re.match(r"pid (\d+)", paths.lock.read_text())
    except OSError:
        return None
    if not m:
        return None
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return int(m.group(1))
