"""REPRODUCTION.md: for each number a report states, the report's value beside ours, with the
metric, both feature spaces, the command and links to the figures."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gankit.fileio import atomic_write
from gankit.reproduce.registry import Report
from gankit.reproduce.run import ExperimentResult, Ours
from gankit.training.estimate import fmt_duration
from gankit.sweeps.tables import fmt, markdown

FEATURE_METRICS = ("fid", "kid", "is", "precision", "recall", "density", "coverage")
SPACE_NAMES = {"classifier": "gankit's MNIST reference classifier",
               "inception": "Inception-v3 (pool3)"}


def _metric_space(key: str, space: str | None) -> str:
    metric = key.partition("/")[2]
    if metric not in FEATURE_METRICS:
        return "-"
    return SPACE_NAMES.get(space or "", space or "not stated")


def _epoch(o: Ours) -> str:
    if o.epoch is None:
        return ""
    wanted = o.stated.epoch
    if wanted is not None and wanted != o.epoch:
        return f" (epoch {o.epoch}; this scale stops before epoch {wanted})"
    return f" (epoch {o.epoch})"


def _row(o: Ours, features: str) -> list[str]:
    s = o.stated
    ours = f"{fmt(o.value)}{_epoch(o)}" if o.value is not None else f"- ({o.why})"
    where = f"{s.key}" + (f" at epoch {s.epoch}" if s.epoch else "")
    note = s.note
    return [s.result, fmt(s.value), ours, where, _metric_space(s.key, s.space),
            _metric_space(s.key, features), note]


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def experiment_section(r: ExperimentResult, base: Path, scale: str, extra: dict[str, Any]
                       ) -> str:
    e = r.experiment
    lines = [f"## {e.name}: {e.what}", ""]
    lines.append(f"Command (this experiment alone): "
                 f"`{e.command(scale, _link(r.out, base), extra, r.points)}`  ")
    when = ("Run by an earlier invocation into this folder (read here, not run again)"
            if r.earlier else f"Wall time this invocation: {fmt_duration(r.wall_s)}")
    lines.append(f"{when}; the sweep table: [summary.md]({_link(r.out / 'summary.md', base)}).")
    if r.failed:
        lines.append(f"\n**Failed runs:** {', '.join(r.failed)} (their logs are in "
                     f"{_link(r.out / 'logs', base)}).")
    if r.interrupted:
        lines.append("\n**Interrupted:** run the same command again to continue.")
    lines.append("")
    if e.stated:
        features = r.sweep.runs[0].cfg.eval.features
        header = ["result", "report", "ours", "metric", "report's feature space",
                  "our feature space", "note"]
        lines.append(markdown(header, [_row(o, features) for o in r.ours]))
    else:
        lines.append("The report states no number for this experiment; compare the figures.")
    figs = []
    for run in r.sweep.runs:
        for f in e.figures:
            p = r.out / run.name / f
            if p.exists():
                figs.append(f"[{run.name}/{f}]({_link(p, base)})")
        steps = r.out / run.name / "steps.jsonl"
        if steps.exists():
            figs.append(f"[{run.name}/steps.jsonl]({_link(steps, base)}) (losses every "
                        f"{run.cfg.log_every} steps)")
    if figs:
        lines += ["", "Figures: " + ", ".join(figs)]
    return "\n".join(lines) + "\n"


def write_reproduction(report: Report, results: list[ExperimentResult], out: Path, scale: str,
                       command: str, extra: dict[str, Any]) -> Path:
    """Write out/REPRODUCTION.md and return its path."""
    head = [f"# Report {report.number}: {report.title}", "",
            f"Reproduced by `{command}` at scale **{scale}**"
            + (" (the report's own lengths)." if scale == "full" else
               " (a much shorter version for a quick look: the overrides are in each command;"
               " values at epochs this scale does not reach are read at its last epoch)."),
            "",
            "gankit's FID, KID, precision/recall and IS are measured in the feature space of its "
            "MNIST reference classifier, not Inception-v3: they are not comparable in value with "
            "a report's Inception numbers (the feature spaces differ; only trends and rankings "
            "compare). With the `inception` extra installed, `--set eval.features=inception` "
            "measures in the reports' space.", ""]
    if report.notes:
        head += [report.notes, ""]
    order = [e.name for e in report.experiments]
    body = [experiment_section(r, out, scale, extra)
            for r in sorted(results, key=lambda r: order.index(r.experiment.name))]
    path = out / "REPRODUCTION.md"
    atomic_write(path, "\n".join(head) + "\n" + "\n".join(body))
    return path
