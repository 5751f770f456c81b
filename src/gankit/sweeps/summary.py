"""The comparison table of a sweep: DIR/summary.md and DIR/summary.csv.

One row per point: the values of the keys the points vary (as resolved, so every row shows
every varied key), how far its runs got, the evaluation metrics of each run's last
metrics.jsonl record (validation FID and whatever else was measured) and time. With `seeds:`
a point's numbers are the mean and sample standard deviation (n - 1) over all its seeds:
every seed counts, none is picked as the best. DIR/runs.csv then has one row per run.

Time: `train_s` sums the runs' per-epoch training time (metrics.jsonl `time_s`, which leaves
out held-out diagnostics and evaluation); `wall_s` is the wall-clock time of the runs'
processes as the sweep measured them (start-up, data, evaluation included), summed over
reruns.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from gankit.config import keys
from gankit.fileio import atomic_write
from gankit.metrics import keys as K
from gankit.sweeps.spec import Run, Sweep
from gankit.sweeps.state import State
from gankit.sweeps.tables import fmt, markdown, to_csv
from gankit.training.runs import RunPaths, epochs_done, progress

# Evaluation keys shown, in this order (standard deviations over KID subsets / IS splits and
# the sample count are left to the run's own files).
EVAL_KEYS = [k for k in (*K.SUMMARY, *K.CONDITIONAL) if not k.endswith("_std")]
SPLITS = ("val", "test")


def metric_keys(record: dict[str, Any]) -> list[str]:
    """The evaluation keys a record holds, e.g. ['val/fid', 'val/kid', ...]."""
    return [f"{s}/{k}" for k in EVAL_KEYS for s in SPLITS if f"{s}/{k}" in record]


def run_row(run: Run, path: Path, state: Any) -> dict[str, Any]:
    """What one run folder tells: status, epochs, its last evaluation, time."""
    paths = RunPaths(path)
    recs = paths.read_metrics()
    last = recs[-1] if recs else {}
    epochs = epochs_done(recs)
    info = state.get(run.name) if state is not None else {}
    code = info.get("exit_code")
    status = progress(paths, recs, run.cfg.epochs)
    if status != "done" and code not in (None, 0, 130) and code > 0:
        status = "failed"
    row: dict[str, Any] = {"run": run.name, "point": run.point, "seed": run.seed,
                           "status": status, "epochs_done": epochs}
    row.update({k: last[k] for k in metric_keys(last)})
    row["train_s"] = sum(float(r.get("time_s", 0.0)) for r in recs) if recs else None
    row["wall_s"] = info.get("wall_s")
    return row


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else None)


def build_table(sweep: Sweep, rows: list[dict[str, Any]]
                ) -> tuple[list[str], list[list[str]], list[dict[str, Any]]]:
    """(markdown header, markdown cells, CSV rows), one row per point."""
    varied = sweep.varied
    seeded = sweep.seeds is not None
    metrics: list[str] = []
    for r in rows:
        metrics += [k for k in r if "/" in k and k not in metrics]
    metrics.sort(key=lambda k: (EVAL_KEYS.index(k.split("/", 1)[1]), k))
    header = ["point", *varied, *(["seeds"] if seeded else []), "status", "epochs_done",
              *metrics, "train_s", "wall_s"]
    cells, csv_rows = [], []
    for i in range(len(sweep.points)):
        runs = [r for r in sweep.runs if r.point == i]
        if not runs:  # a point left out by --points
            continue
        prow = [r for r in rows if r["point"] == i]
        cfg = runs[0].cfg
        values = {k: keys.get(cfg, k) for k in varied}
        done = sum(r["status"] == "done" for r in prow)
        failed = sum(r["status"] == "failed" for r in prow)
        status = ("done" if done == len(prow) else
                  f"{done}/{len(prow)} done" + (f", {failed} failed" if failed else "")
                  if seeded else prow[0]["status"])
        epochs = sorted({r["epochs_done"] for r in prow})
        ep = str(epochs[0]) if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
        line = [sweep.point_label(i), *(fmt(values[k]) for k in varied)]
        out: dict[str, Any] = {"point": sweep.point_label(i), **values}
        if seeded:
            line.append(str(len(prow)))
            out["seeds"] = len(prow)
        line += [status, ep]
        out.update(status=status, epochs_done=ep)
        for k in [*metrics, "train_s", "wall_s"]:
            vals = [r.get(k) for r in prow]
            if not seeded:
                line.append(fmt(vals[0]))
                out[k] = vals[0]
                continue
            mean, std = _mean_std([v for v in vals if v is not None])
            have = sum(v is not None for v in vals)
            cell = "" if not have else fmt(mean) + ("" if std is None else f" ± {fmt(std)}")
            if have and have < len(prow):
                cell += f" (n={have})"
            line.append(cell)
            out[f"{k}_mean"] = None if not have else mean
            out[f"{k}_std"] = std
            out[f"{k}_n"] = have
        cells.append(line)
        csv_rows.append(out)
    return header, cells, csv_rows


def describe(sweep: Sweep) -> str:
    """The lines above the table: what was run and how it was measured."""
    lines = [f"# Sweep `{sweep.name}`", ""]
    if sweep.description:
        lines += [sweep.description, ""]
    lines.append(f"- base preset: `{sweep.preset}`")
    if sweep.common:
        lines.append("- every point: " + ", ".join(f"`{k}={fmt(v)}`"
                                                    for k, v in sweep.common.items()))
    if sweep.cli:
        lines.append("- command line: " + ", ".join(f"`--set {k}={fmt(v)}`"
                                                     for k, v in sweep.cli.items()))
    if sweep.seeds is not None:
        lines.append(f"- seeds {', '.join(map(str, sweep.seeds))}: each cell is the mean ± "
                     "sample standard deviation over all seeds (none is picked as the best)")
    evals = {(r.cfg.eval.every, r.cfg.eval.n, r.cfg.eval.features, r.cfg.eval.split)
             for r in sweep.runs}
    if len(evals) == 1:
        every, n, feats, split = next(iter(evals))
        lines.append("- metrics: none (eval.every = 0)" if every == 0 else
                     f"- metrics: last evaluation of each run: {n} samples vs {n} `{split}` "
                     f"images, `{feats}` features")
    lines.append("- time: `train_s` = training epochs only; `wall_s` = whole run processes")
    return "\n".join(lines) + "\n\n"


def write_summary(sweep: Sweep, out: str | Path, state: Any = None) -> str:
    """Write DIR/summary.md and DIR/summary.csv (and DIR/runs.csv with seeds); returns the
    Markdown table."""
    out = Path(out)
    state = state if state is not None else State(out)
    rows = [run_row(r, out / r.name, state) for r in sweep.runs]
    header, cells, csv_rows = build_table(sweep, rows)
    table = markdown(header, cells)
    atomic_write(out / "summary.md", describe(sweep) + table)
    atomic_write(out / "summary.csv", to_csv(csv_rows))
    if sweep.seeds is not None:
        atomic_write(out / "runs.csv", to_csv(rows))
    return table
