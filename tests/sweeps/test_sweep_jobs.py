"""How many runs of a sweep go at once when the user does not say (`--jobs` left out): one per
core for CPU runs whose thread count is gankit's to choose, else one."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from gankit.config import resolve
from gankit.sweeps import processes
from gankit.sweeps.runner import Planned, _relay_epochs, longest_first, run_sweep
from gankit.sweeps.spec import parse_sweep
from tests.sweeps.conftest import TINY, write_yaml


def test_one_per_core_for_cpu_runs_with_threads_left_to_gankit(monkeypatch) -> None:
    monkeypatch.setattr(processes, "cpu_count", lambda: 4)
    monkeypatch.setattr(processes, "available_memory", lambda: None)   # not this machine's
    free, pinned = resolve("default", {"device": "cpu"}), resolve("default", {"threads": 2})
    assert processes.one_per_core([free, free], 3) == 3       # at most one per unit of work
    assert processes.one_per_core([free], 9) == 4             # at most one per core
    assert processes.one_per_core([free], 1) == 1
    assert processes.one_per_core([free, pinned], 9) == 1     # the user chose the threads
    monkeypatch.setattr(processes, "available_memory", lambda: 5 * processes.RUN_MEMORY - 1)
    assert processes.one_per_core([free], 9) == 4             # 4 fit in the free memory
    monkeypatch.setattr(processes, "available_memory", lambda: 3 * processes.RUN_MEMORY - 1)
    assert processes.one_per_core([free], 9) == 2
    monkeypatch.setattr(processes, "available_memory", lambda: 0)
    assert processes.one_per_core([free], 9) == 1


def test_available_memory_reads_the_kernels_figure() -> None:
    free = processes.available_memory()
    if not Path("/proc/meminfo").exists():   # not Linux: no figure, no cap
        assert free is None
        return
    assert 0 < free <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.slow
@pytest.mark.parametrize("threads, together", [(0, 2), (1, 1)])
def test_a_sweep_left_to_gankit_runs_one_run_per_core(tmp_path: Path, monkeypatch,
                                                      threads: int, together: int) -> None:
    # two cores whatever this machine has: the runner's decision is what is tested; the two
    # workers are real processes either way
    monkeypatch.setattr(processes, "cpu_count", lambda: 2)
    monkeypatch.setattr(processes, "available_memory", lambda: None)
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "eval.every": 0,
                                                       "threads": threads},
                     "grid": {"model.nz": [8, 16]}})
    lines: list[str] = []
    result = run_sweep(s, tmp_path / "out", jobs=None, echo=lines.append)
    assert not result.failed and set(result.exit_codes.values()) == {0}
    assert ("2 at a time, 1 thread each" in lines[0]) == (together == 2)
    # side by side, each run's output goes to its log; one at a time, to the terminal
    logs = sorted(p.name for p in (tmp_path / "out" / "logs").glob("*.log")) \
        if (tmp_path / "out" / "logs").exists() else []
    assert logs == ([f"{r.name}.log" for r in s.runs] if together == 2 else [])
    if together == 2:  # the worker took the thread count it was given
        assert all("1 thread" in (tmp_path / "out" / "logs" / name).read_text()
                   for name in logs)
        # and each run's epoch line reached the terminal, under its name, before its end
        for r in s.runs:
            at = {i for i, ln in enumerate(lines) if ln.startswith(f"      {r.name}: epoch 1: ")}
            assert at and min(at) < next(i for i, ln in enumerate(lines)
                                         if f"{r.name}: done in" in ln)


def test_relay_echoes_new_whole_epoch_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("epoch 1: d_loss 1.0  (2.0 s)\n")               # an earlier invocation's
    seen: list[str] = []
    offset = _relay_epochs(log, log.stat().st_size, "000-a", seen.append)
    with open(log, "a") as f:
        f.write("epoch 2/3: batch 5/10, 0.1 s a step\nepoch 2: d_loss 0.9  (2.1 s)\nepoch 3: d_")
    offset = _relay_epochs(log, offset, "000-a", seen.append)
    assert seen == ["      000-a: epoch 2: d_loss 0.9  (2.1 s)"]   # no heartbeat, no half line
    with open(log, "a") as f:
        f.write("loss 0.8  (2.2 s)\n")
    _relay_epochs(log, offset, "000-a", seen.append)
    assert seen[-1] == "      000-a: epoch 3: d_loss 0.8  (2.2 s)" and len(seen) == 2
    assert _relay_epochs(tmp_path / "gone.log", 7, "000-a", seen.append) == 7


def test_longest_first_orders_jobs_by_the_training_they_have_left() -> None:
    s = parse_sweep({"preset": "mlp-cgan-m4", "set": {**TINY, "epochs": 10},
                     "points": [{"model.nz": n} for n in (8, 16, 32, 64)]})
    a, b, c, d = (Planned(r, Path(r.name), "start") for r in s.runs)
    seconds = {a.name: 10.0, b.name: 50.0, c.name: 100.0, d.name: 50.0}
    assert [j[0].name for j in longest_first([[a], [b], [c], [d]], seconds)] == \
        [c.name, b.name, d.name, a.name]             # ties keep the sweep's order
    c.epoch = 8                                      # resumed: 2 of its 10 epochs are left
    assert [j[0].name for j in longest_first([[a], [b], [c], [d]], seconds)] == \
        [b.name, d.name, c.name, a.name]
    assert [len(j) for j in longest_first([[a], [b, d], [c]], seconds)] == [2, 1, 1]


def test_the_cli_hands_its_estimates_to_the_runner(tmp_path: Path, monkeypatch, capsys) -> None:
    from gankit.cli.main import main
    from gankit.sweeps.runner import SweepResult
    seen: dict = {}

    def fake_run_sweep(sweep, out, jobs=None, compare=None, seconds=None, **_):
        seen["seconds"] = seconds
        return SweepResult(Path(out), [], summary="")
    monkeypatch.setattr("gankit.sweeps.runner.run_sweep", fake_run_sweep)
    spec = write_yaml(tmp_path / "s.yaml", {"preset": "mlp-cgan-m4", "set": TINY,
                                            "points": [{"epochs": 1}, {"epochs": 3}]})
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--no-report"]) == 0
    one, three = (seen["seconds"][name] for name in ("000-epochs=1", "001-epochs=3"))
    assert 0 < one < three
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--no-report",
                 "--no-estimate"]) == 0
    assert seen["seconds"] is None
