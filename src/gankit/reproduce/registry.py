"""The registry of the reports' headline experiments: one YAML file per report
(`reproduce/files/rNNN.yaml`).

A file holds `report` (its number), `title`, optional `notes`, and `experiments`, each with:
`name`; `what`; exactly one of `preset` (one run) or `sweep` (a shipped sweep file); `set`
(overrides at every scale); `short` (overrides of the stated short scale); `figures` (files
of each run folder worth linking); `stated`: the report's numbers, each `{result, key, value}`
with optional `point` (index of the sweep point, default 0), `epoch` (default: the last),
`space` (the report's feature space: `inception`) and `note`. `key` is a metrics.jsonl key
(`val/fid`, `train/d_loss`, ...), `test/<metric>` (evaluated once on the test split at the
end), or `params/G`, `params/D` (parameter counts).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from gankit.config import ConfigError, keys
from gankit.sweeps.spec import Sweep, load_sweep, parse_sweep

SCALES = ("full", "short")
EXPERIMENT_KEYS = {"name", "what", "preset", "sweep", "set", "short", "figures", "stated"}
STATED_KEYS = {"result", "key", "value", "point", "epoch", "space", "note"}


@dataclass(frozen=True)
class Stated:
    """One number a report states, and where gankit's counterpart is read."""
    result: str
    key: str
    value: float
    point: int = 0
    epoch: int | None = None
    space: str | None = None
    note: str = ""


@dataclass
class Experiment:
    name: str
    what: str
    preset: str | None
    sweep: str | None
    set: dict[str, Any]
    short: dict[str, Any]
    figures: list[str]
    stated: list[Stated]

    def overrides(self, scale: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The overrides of every point at `scale`, then `extra` (the command line's --set)."""
        if scale not in SCALES:
            raise ConfigError(f"--scale {scale!r} is not valid; choose one of {', '.join(SCALES)}")
        return {**self.set, **(self.short if scale == "short" else {}), **(extra or {})}

    def load(self, scale: str, extra: dict[str, Any] | None = None) -> Sweep:
        """The experiment as a resolved sweep (a preset is a sweep of one point)."""
        over = self.overrides(scale, extra)
        if self.sweep:
            sweep = load_sweep(self.sweep, over)
        else:
            sweep = parse_sweep({"preset": self.preset, "points": [{}]}, name=self.name,
                                source=f"preset {self.preset}", extra=over)
        return sweep

    def command(self, scale: str, out: str, extra: dict[str, Any] | None = None,
                points: str | None = None) -> str:
        """The `gankit sweep` / `gankit train` command that runs this experiment alone (into
        the folder `gankit reproduce` uses: out/RUN for a preset), only `points` of a sweep
        when given (`--only NAME:POINTS`)."""
        sets = "".join(f" --set {k}={v}" for k, v in self.overrides(scale, extra).items())
        if self.sweep:
            picked = f" --points {points}" if points else ""
            return f"gankit sweep {self.sweep}{sets}{picked} --out {out}"
        run = self.load(scale, extra).runs[0].name
        return f"gankit train --preset {self.preset}{sets} --out {out}/{run}"


@dataclass
class Report:
    number: str
    title: str
    notes: str
    experiments: list[Experiment] = field(default_factory=list)


def _mapping(data: Any, where: str, valid: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    unknown = sorted(set(data) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(sorted(valid))}")
    return data


def _experiment(data: Any, where: str) -> Experiment:
    d = _mapping(data, where, EXPERIMENT_KEYS)
    if ("preset" in d) == ("sweep" in d):
        raise ConfigError(f"{where}: give exactly one of preset: or sweep:")
    stated = [Stated(**_mapping(s, f"{where}, stated {i + 1}", STATED_KEYS))
              for i, s in enumerate(d.get("stated") or [])]
    return Experiment(name=d["name"], what=d.get("what", ""), preset=d.get("preset"),
                      sweep=d.get("sweep"), set=keys.flatten(d.get("set") or {}),
                      short=keys.flatten(d.get("short") or {}),
                      figures=list(d.get("figures") or []), stated=stated)


def report_names() -> list[str]:
    """The numbers of the reports in the registry ("000", "001", ...)."""
    folder = resources.files("gankit.reproduce") / "files"
    return sorted(p.name[1:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_report(number: str) -> Report:
    """The registry entry of report `number` ("4", "004" and "r004" all name report 004)."""
    digits = str(number).lstrip("rR")
    key = digits.zfill(3) if digits.isdigit() else digits
    if key not in report_names():
        raise ConfigError(f"no report {number!r} to reproduce; choose one of "
                          f"{', '.join(report_names())} or all")
    text = (resources.files("gankit.reproduce") / "files" / f"r{key}.yaml").read_text()
    data = _mapping(yaml.safe_load(text), f"reproduce/files/r{key}.yaml",
                    {"report", "title", "notes", "experiments"})
    exps = [_experiment(e, f"report {key}, experiment {i + 1}")
            for i, e in enumerate(data["experiments"])]
    return Report(str(data["report"]), data["title"], data.get("notes", ""), exps)


def select(which: str) -> list[Report]:
    """`all` or one report number."""
    return [load_report(n) for n in report_names()] if which == "all" else [load_report(which)]
