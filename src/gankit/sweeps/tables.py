"""Comparison tables as Markdown and CSV: the one writer of the tables of `gankit sweep`
(summary.md, summary.csv, runs.csv) and `gankit tune` (the trials table, trials.csv)."""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Iterable

from gankit.sweeps.spec import format_value

LEFT = ("point", "status", "state", "run")  # text columns; the others are numbers


def fmt(v: Any) -> str:
    """A cell: 4 significant digits for floats, YAML-like text for the rest, '' for None."""
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return format_value(v)


def markdown(header: list[str], cells: Iterable[list[str]]) -> str:
    """A Markdown table; text columns (LEFT) left-aligned, numbers right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if h in LEFT else "---:" for h in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV of dict rows; the columns are every key in order of first appearance."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (format_value(v) if isinstance(v, (list, tuple, bool)) else v)
                    for k, v in r.items()})
    return buf.getvalue()
