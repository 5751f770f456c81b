"""A run's CPU threads (training/cores.py): the cores shared out, and the one-line warning when
other processes hold cores a run on all of them would wait for."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from gankit.training import cores


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    cores.warn_if_shared.cache_clear()
    cores.warn_if_oversubscribed.cache_clear()
    yield
    torch.set_num_threads(before)
    cores.warn_if_shared.cache_clear()
    cores.warn_if_oversubscribed.cache_clear()


@pytest.mark.parametrize("busy, warned", [(1.0, True), (0.2, False), (None, False)])
def test_all_cores_on_a_busy_machine_warn_once(two_threads, monkeypatch, capsys, busy,
                                                warned) -> None:
    monkeypatch.setattr(cores, "busy_cores", lambda: busy)
    cores.set_threads(0)
    cores.set_threads(0)   # an ensemble's second member: no second line
    err = capsys.readouterr().err
    assert err.count("--set threads=1") == (1 if warned else 0), err
    if warned:
        assert err.startswith("gankit: other processes keep about 1.0 of this machine's")
        assert len(err.strip().splitlines()) == 1


def test_a_thread_count_or_a_non_cpu_run_never_asks(two_threads, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cores, "busy_cores", lambda: pytest.fail("measured the machine"))
    cores.set_threads(0, warn=False)
    cores.set_threads(1)
    assert torch.get_num_threads() == 1
    assert capsys.readouterr().err == ""


def test_busy_cores_sees_a_spinning_process() -> None:
    if not os.path.exists("/proc/stat"):
        assert cores.busy_cores() is None
        return
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\n"
                             "while time.time() - t < 3: pass"])
    try:
        time.sleep(0.5)   # past the interpreter's start
        busy = cores.busy_cores(0.5)
    finally:
        spin.kill()
        spin.wait()
    assert busy is not None and 0.8 <= busy <= (os.cpu_count() or 1) + 0.01, busy


def test_cores_are_shared_out_among_processes() -> None:
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cores.cores_per_process(1) == n
    assert cores.cores_per_process(n * 4) == 1


def test_more_threads_than_cores_warn_once(two_threads, monkeypatch, capsys) -> None:
    monkeypatch.setattr(cores, "cores_per_process", lambda processes: 2)
    cores.set_threads(2)
    assert capsys.readouterr().err == ""
    cores.set_threads(3)
    cores.set_threads(3)   # an ensemble's second member: no second line
    err = capsys.readouterr().err
    assert err == ("gankit: threads=3 is more than the 2 core(s) this process may use; its "
                   "threads take turns and every step waits (22x slower measured at 999 on 2 "
                   "cores): --set threads=2 (or 0, one per core) is faster\n")
    assert torch.get_num_threads() == 3
    cores.set_threads(5, warn=False)   # a CUDA run's CPU threads: no line
    assert capsys.readouterr().err == ""
