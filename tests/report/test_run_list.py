"""`gankit runs` (report/run_list.py): every run folder below some folders, one line each,
read from real run folders: one trained to its end, one stopped before it, one a real second
process is training, and damaged ones."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from gankit.cli.main import main
from gankit.errors import GankitError
from gankit.report import run_list
from gankit.report.run_list import find_runs, run_row, sort_rows, table
from gankit.training import run_lock
from gankit.training.loop import train
from tests.conftest import tiny
from tests.training.test_run_lock import holder as hold_lock

pytestmark = pytest.mark.slow  # trains a run with an evaluation every epoch (~5 s)


def val_fids(run: Path) -> list[float]:
    """metrics.jsonl's validation FIDs, read here with json (not with the library)."""
    return [json.loads(line)["val/fid"] for line in (run / "metrics.jsonl").read_text().split("\n")
            if line.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/done (2 of 2 epochs, FID every epoch) and ROOT/sweep/p0/seed000, a run of 3
    epochs stopped after its first (a copy of the first with its config.yaml saying 3 epochs
    and its second epoch's record gone, as a run killed in its second epoch leaves it)."""
    root = tmp_path_factory.mktemp("runs")
    train(tiny(epochs=2, data__limit=64, eval__every=1), root / "done", progress=False)
    stopped = root / "sweep" / "p0" / "seed000"
    shutil.copytree(root / "done", stopped)
    config = yaml.safe_load((stopped / "config.yaml").read_text())
    (stopped / "config.yaml").write_text(yaml.safe_dump({**config, "epochs": 3}))
    first = (stopped / "metrics.jsonl").read_text().split("\n")[0]
    (stopped / "metrics.jsonl").write_text(first + "\n")
    return root


def test_a_finished_and_a_stopped_run(runs: Path) -> None:
    found = find_runs([runs])
    assert found == [runs / "done", runs / "sweep" / "p0" / "seed000"]
    done, stopped = (run_row(p) for p in found)
    fids = val_fids(runs / "done")
    assert len(fids) == 2
    assert (done.state, done.preset, done.epochs_done, done.epochs) == ("done", "mlp-cgan-m4",
                                                                        2, 2)
    assert done.val_fid == fids[-1] and done.best_val_fid == min(fids)
    assert done.best_epoch == 1 + fids.index(min(fids))
    assert (stopped.state, stopped.epochs_done, stopped.epochs) == ("partial", 1, 3)
    assert stopped.pid is None and done.test_fid is None
    first = json.loads((runs / "done" / "metrics.jsonl").read_text().split("\n")[0])
    first_epoch_s = first["time_s"]
    assert stopped.left_s == 2 * first_epoch_s and done.left_s is None  # 2 epochs at its pace
    text = table([done, stopped], base=runs)
    assert text.splitlines()[1].split()[:5] == ["done", "mlp-cgan-m4", "done", "2/2", "-"]
    assert "1 partial (stopped before their last epoch): `gankit train --resume RUN`" in text


def test_a_run_another_process_trains_is_training_and_no_more_once_it_ends(
        runs: Path, capsys, monkeypatch) -> None:
    p = hold_lock(runs / "done")
    try:
        # the listing never takes a lock (which would turn away a resume started then)
        monkeypatch.setattr(run_lock.fcntl, "flock", lambda *a: pytest.fail("took the lock"))
        row = run_row(runs / "done")
        assert (row.state, row.pid) == ("training", p.pid)
        assert main(["runs", str(runs)]) == 0
        assert f"training (pid {p.pid})" in capsys.readouterr().out
        # without /proc/locks: the pid the lock file names, while that process lives
        monkeypatch.setattr(run_lock, "PROC_LOCKS", runs / "no-such-file")
        assert run_row(runs / "done").pid == p.pid
    finally:
        p.kill()
        p.wait()
    assert run_row(runs / "done").state == "done"
    monkeypatch.undo()
    assert run_row(runs / "done").state == "done"


def test_damaged_folders_are_listed_with_what_is_wrong(runs: Path, tmp_path: Path,
                                                       capsys) -> None:
    for name in ("bad-config", "bad-metrics", "bad-epoch"):
        shutil.copytree(runs / "done", tmp_path / name)
    with open(tmp_path / "bad-config" / "config.yaml", "a") as f:
        f.write("model: [\n")
    lines = (tmp_path / "bad-metrics" / "metrics.jsonl").read_text().split("\n")
    (tmp_path / "bad-metrics" / "metrics.jsonl").write_text("\n".join(["{oops", *lines]))
    (tmp_path / "bad-epoch" / "metrics.jsonl").write_text('{"epoch": "two"}\n')
    rows = [run_row(p) for p in find_runs([tmp_path])]
    assert [(r.state, r.problem is not None) for r in rows] == [("unreadable", True)] * 3
    assert "config.yaml is not valid YAML" in rows[0].problem
    assert "a record's epoch is not a whole number" in rows[1].problem
    assert "metrics.jsonl, line 1: not a JSON record" in rows[2].problem
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("unreadable") == 3 and "not valid YAML" in out


def test_what_is_searched(tmp_path: Path, runs: Path, capsys) -> None:
    shutil.copytree(runs / "done", tmp_path / "a" / "run")
    shutil.copytree(runs / "done", tmp_path / ".venv" / "run")          # hidden: skipped
    shutil.copytree(runs / "done", tmp_path / "a" / "run" / "explore" / "x")  # inside a run
    assert find_runs([tmp_path]) == [tmp_path / "a" / "run"]
    assert find_runs([tmp_path / "a" / "run"]) == [tmp_path / "a" / "run"]
    with pytest.raises(GankitError, match="nope is not a folder"):
        find_runs([tmp_path / "nope"])
    assert main(["runs", str(tmp_path / "nope")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["runs", str(tmp_path / "a" / "run" / "grids")]) == 0
    assert capsys.readouterr().out.startswith("no run folders below")


def test_sorting_and_json(runs: Path, capsys) -> None:
    rows = [run_row(p) for p in find_runs([runs])]
    nofid = run_list.RunRow("x", "", "pending", None, 0, 1, None, None, None, None, None, 0.0)
    by_fid = sort_rows([nofid, *rows], "fid")
    assert by_fid[-1] is nofid
    assert [r.best_val_fid for r in by_fid[:-1]] == sorted(r.best_val_fid for r in rows)
    assert main(["runs", str(runs), "--json", "--sort", "path"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["path"] for d in data] == [str(p) for p in find_runs([runs])]
    assert data[0]["val_fid"] == val_fids(runs / "done")[-1]


def test_a_training_runs_place_in_its_epoch(runs: Path, tmp_path: Path, capsys) -> None:
    """While a run trains, its heartbeat.json (training/logging.py) says where it is within
    the epoch after its last record: the row shows the batch, and the time left is the
    remaining steps of that epoch and the later ones at the heartbeat's pace (the process
    training it now). A heartbeat of another epoch, a damaged one, or a run no process
    trains: no batch, and the recorded epochs' pace."""
    run = tmp_path / "run"
    shutil.copytree(runs / "sweep" / "p0" / "seed000", run)  # 1 of 3 epochs recorded
    epoch_s = json.loads((run / "metrics.jsonl").read_text().split("\n")[0])["time_s"]
    beat = {"epoch": 2, "epochs": 3, "batch": 150, "batches": 469, "step_s": 0.5, "time": 0}
    (run / "heartbeat.json").write_text(json.dumps(beat))
    assert run_row(run).batch is None  # no process trains it: the heartbeat is old
    p = hold_lock(run)
    try:
        row = run_row(run)
        assert (row.state, row.epochs_done, row.batch, row.batches) == ("training", 1, 150, 469)
        assert row.left_s == pytest.approx((319 + 469) * 0.5)
        assert main(["runs", str(tmp_path)]) == 0
        assert "1/3 (batch 150/469)" in capsys.readouterr().out
        (run / "heartbeat.json").write_text(json.dumps({**beat, "epoch": 3}))
        row = run_row(run)
        assert row.batch is None and row.left_s == 2 * epoch_s
        (run / "heartbeat.json").write_text('{"epoch": 2, "batch"')
        assert run_row(run).batch is None
    finally:
        p.kill()
        p.wait()
