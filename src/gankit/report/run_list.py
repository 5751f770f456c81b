"""Every run folder below some folders, one line each: `gankit runs`.

A student with a `runs/` of twenty runs, a sweep and a reproduction asks which are still
training, which stopped half way (and so want `--resume`), and which is best. Each row is read
from the files a run keeps (config.yaml, metrics.jsonl, eval/metrics.json, and while it trains
heartbeat.json: where it is within its epoch) and from the run's lock (training/run_lock.py),
never from its checkpoints, so a listing of many runs is quick
and touches nothing. A folder whose files cannot be read is listed with what is wrong with it
instead of stopping the listing.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from gankit.errors import GankitError
from gankit.report.metrics import read_eval
from gankit.sweeps.tables import fmt
from gankit.training.estimate import fmt_duration
from gankit.training.run_lock import holder
from gankit.training.runs import RunPaths, epochs_done, progress, read_records

# Folders below a root deeper than this are not searched: a sweep's seeds sit at
# ROOT/sweep/point/seedNNN and a reproduction's at ROOT/rNNN/experiment/point.
MAX_DEPTH = 6
# The recorded epochs whose mean training time paces the time left.
LAST_EPOCHS = 5
# The `gankit eval` record whose FID the table shows (the command's default record name).
TEST_RECORD = "best-test-classifier"


@dataclass
class RunRow:
    """What one run folder says about itself.

    state: "training" (a process holds its lock: `pid`), else as `gankit sweep`'s tables
    say it (training/runs.py's `progress`): "done", "partial" (stopped before its last
    epoch: `gankit train --resume` continues it), "pending" (nothing yet); or "unreadable"
    (a file of it cannot be read: `problem` says which and why)."""
    path: str
    preset: str = ""
    state: str = "pending"
    pid: int | None = None
    epochs_done: int = 0
    epochs: int | None = None
    val_fid: float | None = None        # the last validation FID (metrics.jsonl)
    best_val_fid: float | None = None   # the lowest, and at which epoch
    best_epoch: int | None = None
    label_acc: float | None = None      # the last validation label accuracy (conditional runs)
    test_fid: float | None = None       # eval/metrics.json, TEST_RECORD
    updated: float = 0.0                # when a file of the run last changed (s since 1970)
    problem: str | None = None
    left_s: float | None = None     # training time its remaining epochs take at its pace
    batch: int | None = None        # while it trains: steps done of the current epoch's
    batches: int | None = None


def find_runs(roots: Iterable[str | Path]) -> list[Path]:
    """The run folders (those with a config.yaml) at or below each root, in path order;
    hidden folders (.venv, .git) and a run's own subfolders are not searched."""
    found: list[Path] = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise GankitError(f"{root} is not a folder; give folders that hold run folders "
                              "(for example runs/ or a sweep's --out)")
        found += _walk(root)
    return sorted(dict.fromkeys(found))


def _walk(root: Path) -> Iterator[Path]:
    for top, dirs, files in os.walk(root):
        if "config.yaml" in files and RunPaths(Path(top)).is_run():
            dirs.clear()
            yield Path(top)
            continue
        depth = len(Path(top).relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []


def run_row(path: Path) -> RunRow:
    """The row of one run folder (see RunRow)."""
    paths = RunPaths(path)
    row = RunRow(str(path), updated=_updated(paths))
    try:
        config = paths.config_dict()
        records, _ = read_records(paths.metrics, quiet=True)
        row.epochs_done = epochs_done(records)
    except GankitError as e:
        row.state, row.problem = "unreadable", str(e)
        return row
    except (TypeError, ValueError):
        row.state, row.problem = "unreadable", (f"{paths.metrics}: a record's epoch is not a "
                                                "whole number; the file was edited or damaged")
        return row
    row.preset = str(config.get("preset") or "")
    epochs = config.get("epochs")
    row.epochs = epochs if isinstance(epochs, int) else None
    fids = [(r["val/fid"], int(r.get("epoch", 0))) for r in records if _number(r.get("val/fid"))]
    if fids:
        row.val_fid = fids[-1][0]
        row.best_val_fid, row.best_epoch = min(fids, key=lambda f: f[0])
    accs = [r["val/label_acc"] for r in records if _number(r.get("val/label_acc"))]
    row.label_acc = accs[-1] if accs else None
    row.test_fid = _test_fid(read_eval(path))
    row.pid = holder(paths)
    row.state = "training" if row.pid is not None else progress(paths, records, row.epochs)
    beat = _heartbeat(paths) if row.state == "training" else None
    if beat is not None and beat["epoch"] != row.epochs_done + 1:
        beat = None  # of an epoch metrics.jsonl already holds
    if beat is not None:
        row.batch, row.batches = beat["batch"], beat["batches"]
    row.left_s = _left(records, row.epochs, row.epochs_done, beat)
    return row


def _heartbeat(paths: RunPaths) -> dict[str, Any] | None:
    """heartbeat.json of a training run (training/logging.py), or None where there is none
    yet or it is not what a run writes (the listing goes on without it)."""
    try:
        beat = json.loads(paths.heartbeat.read_text())
    except (OSError, ValueError):
        return None
    keys = ("epoch", "batch", "batches", "step_s")
    if not isinstance(beat, dict) or not all(_number(beat.get(k)) for k in keys):
        return None
    return beat


def _left(records: list[dict[str, Any]], epochs: int | None, done: int,
          beat: dict[str, Any] | None = None) -> float | None:
    """The remaining epochs times the mean training time (`time_s`) of the last few recorded
    ones: the pace of its own machine and settings (evaluations not included). With a
    heartbeat of the epoch in progress, its remaining steps and those of the epochs after it
    at the heartbeat's pace: that of the process training it now, whose threads or machine
    may differ from those of the recorded epochs (a resume on two threads)."""
    if epochs is None or done >= epochs:
        return None
    if beat is not None:
        return ((epochs - done) * beat["batches"] - beat["batch"]) * beat["step_s"]
    times = [r["time_s"] for r in records if _number(r.get("time_s"))][-LAST_EPOCHS:]
    return (epochs - done) * sum(times) / len(times) if times else None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _test_fid(data: Any) -> float | None:
    record = data.get(TEST_RECORD) if isinstance(data, dict) else None
    metrics = record.get("metrics") if isinstance(record, dict) else None
    fid = metrics.get("fid") if isinstance(metrics, dict) else None
    return fid if _number(fid) else None


def _updated(paths: RunPaths) -> float:
    """The newest modification time among the files a run rewrites as it goes."""
    times = []
    for p in (paths.config, paths.metrics, paths.heartbeat, paths.checkpoint("last"),
              paths.eval_metrics):
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def sort_rows(rows: list[RunRow], by: str) -> list[RunRow]:
    """Rows by "path", by "fid" (the lowest validation FID first, runs without one last) or
    by "updated" (newest first)."""
    if by == "fid":
        return sorted(rows, key=lambda r: (r.best_val_fid is None, r.best_val_fid or 0.0,
                                           r.path))
    if by == "updated":
        return sorted(rows, key=lambda r: -r.updated)
    return sorted(rows, key=lambda r: r.path)


def as_dicts(rows: list[RunRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def _num(v: float | None) -> str:
    return fmt(v) or "-"


def table(rows: list[RunRow], base: Path | None = None) -> str:
    """The rows as aligned text columns (paths relative to `base` when below it), with a
    line on how to continue the partial runs."""
    header = ("run", "preset", "state", "epochs", "left", "val fid", "best val fid",
              "label acc", "test fid", "updated")
    cells = [header]
    for r in rows:
        path = r.path
        if base is not None:
            try:
                path = str(Path(r.path).resolve().relative_to(base.resolve())) or "."
            except ValueError:
                pass
        state = f"training (pid {r.pid})" if r.state == "training" and r.pid else r.state
        best = "-" if r.best_val_fid is None else f"{fmt(r.best_val_fid)} (epoch {r.best_epoch})"
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.updated)) if r.updated else "-"
        epochs = f"{r.epochs_done}/{r.epochs if r.epochs is not None else '?'}"
        if r.batch is not None:
            epochs += f" (batch {r.batch}/{r.batches})"
        left = "-" if r.left_s is None else fmt_duration(r.left_s)
        cells.append((path, r.preset or "-", state, epochs, left, _num(r.val_fid), best,
                      _num(r.label_acc), _num(r.test_fid), when))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = ["  ".join(f"{c:<{w}}" for c, w in zip(row, widths)) + "  " + row[-1]
             for row in cells]
    lines += [r.problem for r in rows if r.problem]  # each names its file
    partial = [r for r in rows if r.state == "partial"]
    if partial:
        lines.append(f"{len(partial)} partial (stopped before their last epoch): `gankit train "
                     "--resume RUN` continues one where it stopped")
    return "\n".join(lines)
