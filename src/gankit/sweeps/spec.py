"""Sweep files: a base preset plus a grid or a list of overrides, read and checked.

A sweep file (YAML) holds:

    preset: dcgan-r004          # the base preset (default: default)
    description: ...               # free text, shown in summary.md
    set: {epochs: 10}              # overrides for every point
    grid: {batch_size: [64, 128]}  # key -> values; the product is taken   } exactly one
    points: [{}, {model.nz: 32}]   # or a list of override maps             } of the two
    seeds: [0, 1, 2]               # optional: every point once per seed

A point may name its own `preset:` (report 000's M1..M4 are four presets); `preset` may also
be a grid key. Keys are the dotted config keys of `gankit presets --keys`; nested maps
(`eval: {every: 1}`) are the same as dotted keys. Overrides apply in this order, later wins:
the preset, `set:`, the point, then `--set` from the command line.

Every point is resolved to a full TrainConfig when the file is loaded, so an unknown key or a
bad value is an error before anything runs.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from gankit.config import ConfigError, TrainConfig, config_key, keys, load_yaml, resolve

SWEEP_KEYS = ("preset", "description", "set", "grid", "points", "seeds")
NAME_LIMIT = 120  # characters of a run folder name (the index keeps names unique)


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: a point, possibly repeated with a seed."""
    point: int                     # index of the point in the sweep
    name: str                      # run folder name, e.g. 001-batch_size=64 or 001-...-seed=2
    overrides: dict[str, Any]      # the point's own overrides (what names it), incl. preset
    seed: int | None               # the seed from `seeds:`, None without seeds
    cfg: TrainConfig


@dataclass
class Sweep:
    """A loaded and fully resolved sweep."""
    name: str                      # the file's stem: names the default output folder
    source: str                    # where it was read from
    preset: str
    description: str
    common: dict[str, Any]         # `set:`, dotted keys
    cli: dict[str, Any]            # command-line --set (applied last, to every point)
    points: list[dict[str, Any]]   # per point, dotted keys (and maybe "preset")
    seeds: list[int] | None
    runs: list[Run] = field(default_factory=list)

    @property
    def varied(self) -> list[str]:
        """The keys the points override (in order of first appearance): the table's columns."""
        keys: list[str] = []
        for p in self.points:
            keys += [k for k in p if k not in keys]
        return keys

    def point_label(self, i: int) -> str:
        """The point's folder name without a seed suffix."""
        return point_name(i, self.points[i])

    def to_yaml(self) -> str:
        """The sweep as run, for the output folder (command-line --set as a comment)."""
        data: dict[str, Any] = {"preset": self.preset}
        if self.description:
            data["description"] = self.description
        data["set"] = self.common
        data["points"] = self.points
        if self.seeds is not None:
            data["seeds"] = self.seeds
        head = f"# gankit sweep {self.source}"
        head += "".join(f" --set {k}={yaml_value(v)}" for k, v in self.cli.items())
        return head + "\n" + yaml.safe_dump(data, sort_keys=False)


def select_points(sweep: Sweep, text: str, said: str | None = None) -> Sweep:
    """The sweep with only the points `text` names ("0,2,5" or "1-3", 0-based as in the run
    folder names). Folders keep their names, so a later run of every point reuses them.
    `said`: how the user gave `text`, for the error (default `--points TEXT`)."""
    said = said or f"--points {text!r}"
    chosen: set[int] = set()
    n = len(sweep.points)
    for part in text.split(","):
        a, sep, b = part.strip().partition("-")
        if not (a.isdigit() and (not sep or b.isdigit())):
            raise ConfigError(f"{said}: give point numbers 0..{n - 1} as a list or ranges, "
                              "e.g. 0,2 or 1-3")
        chosen.update(range(int(a), int(b or a) + 1))
    bad = sorted(i for i in chosen if i >= n)
    if bad:
        raise ConfigError(f"{said}: the sweep has points 0..{n - 1}, not "
                          f"{', '.join(map(str, bad))}")
    return dataclasses.replace(sweep, runs=[r for r in sweep.runs if r.point in chosen])


def shipped_names() -> list[str]:
    """The sweep files shipped in the package (gankit/sweeps/files/*.yaml), sorted."""
    folder = resources.files("gankit.sweeps") / "files"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def find_file(name_or_path: str | Path) -> tuple[str, str]:
    """(name, YAML text) of a sweep file path, or of a shipped file named bare (`r004-configs`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path.stem, path.read_text()
    name = str(name_or_path)
    stem = name[:-5] if name.endswith(".yaml") else name
    if "/" not in stem and stem in shipped_names():
        return stem, (resources.files("gankit.sweeps") / "files" / f"{stem}.yaml").read_text()
    near = difflib.get_close_matches(stem, shipped_names(), n=3, cutoff=0.4)
    hint = f"; shipped sweeps with a close name: {', '.join(near)}" if near else ""
    raise ConfigError(f"no sweep file {name!r} (neither a file nor a shipped sweep{hint}); "
                      f"shipped: {', '.join(shipped_names())}")


def load_sweep(name_or_path: str | Path, extra: Iterable[str] | dict[str, Any] = ()) -> Sweep:
    """Read a sweep file (or a shipped one by name) and resolve every run's config.

    `extra` are overrides for every point ("key=value" strings or a dict), applied last.
    Raises ConfigError, naming the point, for anything that would fail later.
    """
    name, text = find_file(name_or_path)
    data = load_yaml(text, f"sweep file {name_or_path}")
    return parse_sweep(data, name=name, source=str(name_or_path), extra=extra)


def parse_sweep(data: Any, name: str = "sweep", source: str = "<dict>",
                extra: Iterable[str] | dict[str, Any] = ()) -> Sweep:
    """A Sweep from the mapping a sweep file holds (see the module docstring)."""
    where = f"sweep file {source}"
    check_top_keys(data, SWEEP_KEYS, where, "preset:, set: and grid: or points:",
                   {"space": "`space:` belongs in a tune file (`gankit tune`), not a sweep file"})
    preset = data.get("preset", "default")
    if not isinstance(preset, str):
        raise ConfigError(f"{where}: preset: expected a preset name, got {preset!r}")
    common = flatten(data.get("set") or {}, f"{where}, set:", allow_preset=False)
    cli = overrides_dict(extra, "--set")
    has_grid, has_points = "grid" in data, "points" in data
    if has_grid == has_points:
        raise ConfigError(f"{where}: give exactly one of grid: (key -> list of values, the "
                          "product is taken) or points: (a list of override maps)")
    points = (grid_points(data["grid"], where) if has_grid
              else list_points(data["points"], where))
    seeds = parse_seeds(data.get("seeds"), where)
    if seeds is not None:
        clash = [i for i, p in enumerate(points) if "seed" in p]
        if "seed" in common or "seed" in cli or clash:
            raise ConfigError(f"{where}: `seeds:` repeats every point with each seed, so `seed` "
                              "cannot also be set (in set:, a point or --set)")
    sweep = Sweep(name=name, source=source, preset=preset, description=str(
        data.get("description") or "").strip(), common=common, cli=cli, points=points,
        seeds=seeds)
    sweep.runs = resolve_runs(sweep)
    return sweep


def check_top_keys(data: Any, valid: Sequence[str], where: str, expected: str,
                   misplaced: dict[str, str] | None = None) -> None:
    """A sweep or tune file's top level: a mapping of known keys. An unknown key names the
    nearest valid ones; `misplaced` gives the message for keys that belong in another file."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with {expected}")
    for key in data:
        if key not in valid:
            if misplaced and key in misplaced:
                raise ConfigError(f"{where}: {misplaced[key]}")
            near = difflib.get_close_matches(str(key), valid, n=2, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"{where}: unknown top-level key {key!r}{hint} "
                              f"(valid: {', '.join(valid)})")


def flatten(data: Any, where: str, allow_preset: bool, grid: bool = False) -> dict[str, Any]:
    """{dotted key: value} from a map that may nest (`eval: {every: 1}`); keys are checked.
    `preset` is allowed where `allow_preset` (a name, or in a `grid` a list of names)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} expected a map of config keys to values, got {data!r}")
    out = keys.flatten(data)
    for dotted, value in out.items():
        if dotted != "preset":
            keys.check_key(dotted, where)
        elif not allow_preset:
            raise ConfigError(f"{where} `preset` goes at the top of the sweep file or in "
                              "a point, not in set:/--set")
        elif not grid and not isinstance(value, str):
            raise ConfigError(f"{where} preset: expected a preset name, got {value!r}")
    return out


def overrides_dict(extra: Iterable[str] | dict[str, Any], where: str) -> dict[str, Any]:
    if isinstance(extra, dict):
        return flatten(extra, f"{where}:", allow_preset=False)
    out: dict[str, Any] = {}
    for text in extra:
        key, value = keys.parse_override(text)
        if key == "preset":
            raise ConfigError(f"{where} preset=...: the preset comes from the sweep file")
        keys.check_key(key, f"{where} {text}:")
        out[key] = value
    return out


def grid_points(grid: Any, where: str) -> list[dict[str, Any]]:
    """The product of a grid, in file order (the last key varies fastest)."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(f"{where}: grid: is empty; give at least one key with a list of "
                          "values, e.g. grid: {batch_size: [64, 128]}")
    names, values = [], []
    for key, vals in flatten(grid, f"{where}: grid:", allow_preset=True, grid=True).items():
        if not isinstance(vals, list):
            raise ConfigError(f"{where}: grid: {key}: expected a list of values, got {vals!r} "
                              "(a single value for every point goes in set:)")
        if not vals:
            raise ConfigError(f"{where}: grid: {key}: the list of values is empty, so the grid "
                              "has no points")
        names.append(key)
        values.append(vals)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def list_points(points: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(points, list) or not points:
        raise ConfigError(f"{where}: points: expected a non-empty list of override maps "
                          "(use {} for the base preset as it is)")
    return [flatten(p or {}, f"{where}: point {i:03d}:", allow_preset=True)
            for i, p in enumerate(points)]


def parse_seeds(seeds: Any, where: str) -> list[int] | None:
    if seeds is None:
        return None
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ConfigError(f"{where}: seeds: expected a non-empty list of integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds: {seeds} repeats a seed")
    return seeds


def resolve_runs(sweep: Sweep) -> list[Run]:
    """Every run's full config; a bad point is a ConfigError that names it."""
    runs = []
    for i, point in enumerate(sweep.points):
        label = point_name(i, point)
        preset = point.get("preset", sweep.preset)
        over = {k: v for k, v in point.items() if k != "preset"}
        for seed in sweep.seeds if sweep.seeds is not None else [None]:
            # command-line --set wins over the point: it is applied to every point
            merged = {**sweep.common, **over, **sweep.cli}
            if seed is not None:
                merged["seed"] = seed
            try:
                cfg = resolve(preset, merged)
            except ConfigError as e:
                raise ConfigError(f"sweep {sweep.name}, point {label}: {e}") from None
            name = label if seed is None else f"{label}-seed={seed}"
            runs.append(Run(point=i, name=name, overrides=point, seed=seed, cfg=cfg))
    if not sweep.cli:
        # (a command-line --set may make points equal on purpose: `gankit reproduce --scale
        # short` gives report 001's epoch ablation one short length)
        _check_distinct(sweep.name, runs)
    return runs


def _check_distinct(name: str, runs: list[Run]) -> None:
    """A ConfigError when two runs of a sweep file resolve to one config (a point listed
    twice, or written two ways): the second would train the first again, bit for bit."""
    seen: dict[str, str] = {}
    for run in runs:
        key = config_key(run.cfg)
        if key in seen:
            raise ConfigError(f"sweep {name}: points {seen[key]} and {run.name} resolve to the "
                              "same config, so both would train the same run: remove one")
        seen[key] = run.name


def point_name(index: int, overrides: dict[str, Any]) -> str:
    """A stable folder name from a point's index and overrides: 001-batch_size=64-model.nz=32."""
    parts = [f"{k}={format_value(v)}" for k, v in overrides.items()] or ["base"]
    name = safe("-".join([f"{index:03d}"] + parts))
    return name if len(name) <= NAME_LIMIT else name[:NAME_LIMIT].rstrip("-_.")


def yaml_value(value: Any) -> str:
    """A value as it would be typed after --set key= (read back as YAML)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "_".join(format_value(v) for v in value)
    return str(value)


def safe(text: str) -> str:
    """Keep folder names portable: letters, digits and . _ = + - only."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text)
