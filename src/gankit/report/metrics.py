"""The numbers a report shows: the last epoch's training diagnostics and RUN/eval/metrics.json,
as flat {key: value} maps, and how values are printed.

Keys are the ones in the files: "train/g_loss", "val/fid" (metrics.jsonl) and
"eval/<record>/<metric>" for `gankit eval` records ({"best-val-classifier": {..., "metrics":
{"fid": ...}}} gives "eval/best-val-classifier/fid"). Any other JSON shape is flattened by
joining nested dict keys with "/" under "eval/". Non-numeric leaves and lists are left out; a
JSON null (a non-finite number) is kept as None.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.training.runs import RunPaths

# Record fields of `gankit eval` worth a line under the record's table (not metrics).
EVAL_META = ("dataset", "split", "features", "which", "n", "seed", "time_s")
INTEGER_KEYS = {"epoch", "step", "d_steps", "n", "modes", "seed"}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class MetricGroup:
    """One block of a metrics table: a title, a note and {key: value}; `per_class` holds the
    keys of the form "<prefix>/<metric>/<class>" as {metric: {class: (key, value)}}."""
    title: str
    values: dict[str, float | None]
    note: str = ""
    prefix: str = ""      # shown keys drop it (the group title says it): "eval/<record>/"
    per_class: dict[str, dict[str, tuple[str, float | None]]] = field(default_factory=dict)


def read_eval(run_dir: str | Path) -> Any | None:
    """RUN/eval/metrics.json parsed, or None when absent or not valid JSON."""
    path = RunPaths(Path(run_dir)).eval_metrics
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _is_record(v: Any) -> bool:
    return isinstance(v, dict) and isinstance(v.get("metrics"), dict)


def flatten(data: Any, prefix: str) -> dict[str, float | None]:
    """Numeric leaves of nested dicts as {prefix/a/b: value}; None leaves kept as None."""
    out: dict[str, float | None] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}/{k}"
            if isinstance(v, dict):
                out.update(flatten(v, key))
            elif _is_number(v):
                out[key] = v
            elif v is None:
                out[key] = None
    return out


def flatten_eval(data: Any) -> dict[str, float | None]:
    """RUN/eval/metrics.json as {"eval/...": value} (see the module docstring)."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, float | None] = {}
    for k, v in data.items():
        if _is_record(v):
            out.update(flatten(v["metrics"], f"eval/{k}"))
        elif isinstance(v, dict):
            out.update(flatten(v, f"eval/{k}"))
        elif _is_number(v) or v is None:
            out[f"eval/{k}"] = v
    return out


def eval_groups(data: Any) -> list[MetricGroup]:
    """The eval file as table blocks: one per `gankit eval` record (or one for a flat file),
    per-class keys ("label_acc/3") split off into a per-class matrix."""
    if not isinstance(data, dict):
        return []
    records = {k: v for k, v in data.items() if _is_record(v)}
    groups = []
    for name, rec in records.items():
        meta = ", ".join(f"{m} {rec[m]}" for m in EVAL_META if m in rec and rec[m] is not None)
        groups.append(_split_per_class(f"Evaluation {name}",
                                       flatten(rec["metrics"], f"eval/{name}"), meta,
                                       f"eval/{name}/"))
    rest = {k: v for k, v in data.items() if k not in records}
    if rest:
        flat = flatten_eval(rest)
        if flat:
            groups.append(_split_per_class("Evaluation (eval/metrics.json)", flat, "",
                                           "eval/"))
    return groups


def _split_per_class(title: str, flat: dict[str, float | None], note: str,
                     prefix: str = "") -> MetricGroup:
    """Keys ending in "/<integer>" go to the per-class matrix."""
    values, per_class = {}, {}
    for key, v in flat.items():
        head, _, last = key.rpartition("/")
        if last.isdigit() and head.count("/") >= 1:
            metric = head.rsplit("/", 1)[1]
            per_class.setdefault(metric, {})[last] = (key, v)
        else:
            values[key] = v
    return MetricGroup(title, values, note, prefix, per_class)


def training_group(rows: list[dict]) -> MetricGroup | None:
    """The last epoch's record of metrics.jsonl (numbers only)."""
    if not rows:
        return None
    last = rows[-1]
    values = {k: v for k, v in last.items() if _is_number(v) or v is None}
    return MetricGroup(f"Training diagnostics, epoch {last.get('epoch', len(rows))}", values,
                       "last record of metrics.jsonl; val/ = held-out validation images")


def run_metrics(run_dir: str | Path, rows: list[dict]) -> dict[str, float | None]:
    """Every number a run's report shows, flat: last epoch's record and the eval file."""
    out: dict[str, float | None] = {}
    g = training_group(rows)
    if g:
        out.update(g.values)
    out.update(flatten_eval(read_eval(run_dir)))
    return out


def format_value(key: str, v: float | None) -> str:
    """A number as the table prints it: integers plain, others to about 4 significant digits."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    name = key.rsplit("/", 1)[-1]
    if isinstance(v, int) or (name in INTEGER_KEYS and float(v).is_integer()):
        return str(int(v))
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:#.4g}" if a < 100 else f"{v:.2f}"   # '#': keep zeros, 1.000 not 1
    if a >= 1e-3:
        return f"{v:.4f}"
    return f"{v:.3e}"


def exact(v: float | None) -> str:
    """The exact number for a data-value attribute: repr round-trips a float; "" for none."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return repr(int(v)) if isinstance(v, int) else repr(float(v))
